"""The one interface every consumer uses: images in, embeddings (unit vectors) or scores out.

An encoder carries everything its model file says about use: preprocessing, the default test-time
augmentation, the feature normaliser, stored thresholds and the fingerprint that galleries bind to.
``SingleEncoder`` wraps one network; ``MetaEncoder`` (``meta.py``) concatenates several.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finegrain.artifact import tensors_under
from finegrain.data.images import decode_image, resize_square
from finegrain.devices import model_device
from finegrain.encoders.normalize import FeatureNormalizer
from finegrain.encoders.preprocess import Preprocess
from finegrain.encoders.tta import forward_with_tta, parse_tta
from finegrain.errors import DataError, Problem
from finegrain.models.model import ScoringModel, model_from_manifest
from finegrain.utils import progress_bar

OUTPUTS = ("embedding", "score")


@dataclass
class Encoded:
    """The readable images, their vectors (N×E, or N scores) in the same order, and the unreadable ones."""

    paths: list[Path]
    vectors: np.ndarray
    problems: list[Problem] = field(default_factory=list)


class Encoder:
    """Base class: subclasses set ``image_size``, ``output_size`` and implement ``_encode_batch``."""

    output: str  # "embedding" (unit vectors) | "score" (one number per image)
    image_size: int
    output_size: int
    face_cropper = None  # a face model's MainFaceCropper: every image becomes a crop of its main face

    def __init__(self, manifest: dict[str, Any] | None = None, path: Path | None = None,
                 tta: Sequence[str] = (), batch_size: int = 256):
        self.manifest = dict(manifest or {})
        self.path = path
        self.tta = parse_tta(tta)
        self.batch_size = batch_size

    @property
    def kind(self) -> str:
        """``embedding``, ``score`` or ``meta`` (a combined model), as the model file says."""
        return self.manifest.get("kind", self.output)

    @property
    def fingerprint(self) -> str | None:
        return self.manifest.get("fingerprint")

    @property
    def thresholds(self) -> dict[str, dict]:
        return dict(self.manifest.get("thresholds") or {})

    def describe(self) -> dict[str, Any]:
        """What a report or an index says about the encoder."""
        return {"model": str(self.path) if self.path else None, "kind": self.kind, "output": self.output,
                "image_size": self.image_size, "output_size": self.output_size, "tta": list(self.tta),
                "fingerprint": self.fingerprint}

    def _encode_batch(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to(self, device: torch.device) -> Encoder:
        """Compute on ``device`` from now on (its network's weights move there); returns the encoder."""
        raise NotImplementedError

    def prepare_image(self, image: np.ndarray) -> np.ndarray:
        """A decoded RGB image as the model takes it: its main face cropped (a face model) or resized whole."""
        if self.face_cropper is not None:
            return self.face_cropper.crop(image, self.image_size)[0]
        return resize_square(image, self.image_size)

    def _load_prepared(self, path: Path) -> np.ndarray | Problem:
        """Decode and prepare one image, or say why it cannot be used."""
        try:
            # A face is found at full resolution; a reduced decode is only for plain resizing.
            target = None if self.face_cropper is not None else self.image_size
            return self.prepare_image(decode_image(Path(path), target_size=target))
        except DataError as e:
            return e.problems[0] if e.problems else Problem(path, e.summary)

    def encode_array(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """uint8 images already resized to ``image_size`` (N×S×S×3) → float32 N×E (or N scores)."""
        out: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            stop = min(start + self.batch_size, len(images))
            # A slice of an array is a view; only lists (or cache rows) need stacking.
            chunk = images[start:stop] if isinstance(images, np.ndarray) else np.stack(
                [images[i] for i in range(start, stop)])
            out.append(self._encode_batch(chunk))
        if not out:
            return np.zeros((0, self.output_size) if self.output == "embedding" else 0, np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def encode_paths(self, paths: Sequence[Path], batch_size: int | None = None) -> Iterator[Encoded]:
        """Stream batch by batch, decoding in a thread pool while the model runs.

        Memory stays at one batch of images however many there are; OpenCV releases the GIL while decoding.
        """
        for part in self.load_paths(paths, batch_size):
            yield Encoded(part.paths, self.encode_array(part.vectors if len(part.paths) else []), part.problems)

    def load_paths(self, paths: Sequence[Path], batch_size: int | None = None) -> Iterator[Encoded]:
        """``encode_paths`` before the network: each batch's decoded images (uint8 N×S×S×3) in ``vectors``."""
        size = batch_size or self.batch_size
        with ThreadPoolExecutor(max_workers=2) as pool:
            for start in range(0, len(paths), size):
                chunk = [Path(p) for p in paths[start : start + size]]
                results = list(pool.map(self._load_prepared, chunk))
                good = [(p, img) for p, img in zip(chunk, results) if not isinstance(img, Problem)]
                problems = [img for img in results if isinstance(img, Problem)]
                images = (np.stack([img for _, img in good]) if good
                          else np.zeros((0, self.image_size, self.image_size, 3), np.uint8))
                yield Encoded([p for p, _ in good], images, problems)

    def encode_files(self, paths: Sequence[Path | str], skip_bad: bool = False, progress: bool = True,
                     what: str = "images") -> Encoded:
        """Every file, in order. Unreadable files stop it with each one named, or with ``skip_bad`` are left
        out (and listed in ``problems``)."""
        parts: list[Encoded] = []
        bar = progress_bar(total=len(paths), enabled=progress, desc=f"encoding {what}", unit="img")
        for part in self.encode_paths([Path(p) for p in paths]):
            parts.append(part)
            bar.update(len(part.paths) + len(part.problems))
        bar.close()
        problems = [p for part in parts for p in part.problems]
        if problems and not skip_bad:
            raise DataError(f"{what}: {len(problems)} image(s) could not be read", problems)
        vectors = (np.concatenate([part.vectors for part in parts]) if parts
                   else self.encode_array(np.zeros((0, self.image_size, self.image_size, 3), np.uint8)))
        return Encoded([p for part in parts for p in part.paths], vectors, problems)


class SingleEncoder(Encoder):
    """One network: an embedding model (unit vectors, then its normaliser) or a scoring model (scores)."""

    def __init__(self, model: torch.nn.Module, preprocess: Preprocess, normalizer: FeatureNormalizer | None = None,
                 tta: Sequence[str] = (), batch_size: int = 256, manifest: dict[str, Any] | None = None,
                 path: Path | None = None):
        super().__init__(manifest, path, tta, batch_size)
        self.model = model.eval()
        self.preprocess = preprocess
        self.normalizer = normalizer
        self.output = "score" if isinstance(model, ScoringModel) else "embedding"
        self.face_cropper = preprocess.face_cropper()

    @classmethod
    def from_artifact(cls, manifest: dict[str, Any], tensors: dict[str, torch.Tensor], where: object,
                      tta: Sequence[str] | None = None, normalize: bool = True, batch_size: int = 256,
                      path: Path | None = None) -> SingleEncoder:
        """Build from a model file's manifest and tensors (``model.*`` weights, ``normalizer.*``).

        ``tta=None`` uses the file's default; ``normalize=False`` ignores a stored normaliser.
        """
        model = model_from_manifest(manifest, tensors_under(tensors, "model"), where)
        normalizer = (FeatureNormalizer.from_artifact(manifest.get("normalizer"), tensors, "normalizer", where)
                      if normalize else None)
        return cls(model, Preprocess.from_dict(manifest.get("preprocessing"), where), normalizer,
                   manifest.get("tta") or () if tta is None else tta, batch_size, manifest, path)

    def to(self, device: torch.device) -> SingleEncoder:
        self.model.to(device)
        return self

    @property
    def image_size(self) -> int:
        return self.preprocess.image_size

    @property
    def output_size(self) -> int:
        if self.output == "score":
            return 1
        if self.normalizer is not None and self.normalizer.output_size:
            return self.normalizer.output_size
        return self.model.head.embedding_size

    @torch.inference_mode()
    def _encode_batch(self, images: np.ndarray) -> np.ndarray:
        # Images go to wherever the weights are (a GPU while training there, or after load_encoder(device=...)).
        x = self.preprocess.to_tensor(images).to(model_device(self.model))
        out = forward_with_tta(self.model, x, self.tta).float().cpu().numpy()
        if self.output == "score":
            return out.reshape(-1)
        return self.normalizer.transform(out) if self.normalizer is not None else out
