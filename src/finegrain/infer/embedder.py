"""Turn images into embeddings with a trained model: batched, no gradients, streaming for big sets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from finegrain.data.images import decode_image, resize_square
from finegrain.errors import DataError, FinegrainError, Problem
from finegrain.infer.normalize import FeatureNormalizer
from finegrain.infer.tta import embed_with_tta, parse_tta
from finegrain.models import EmbeddingModel
from finegrain.models.model import FORMAT, model_from_payload, read_payload

META_FORMAT = "finegrain-meta"

MODEL_FILE = "model.pt"


@dataclass
class Preprocess:
    """How the model saw its training images; stored in the model file so loading needs no flags."""

    image_size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def to_dict(self) -> dict:
        """The form stored in a model file's ``extra["preprocess"]``."""
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std)}

    def to_tensor(self, images: np.ndarray) -> torch.Tensor:
        """uint8 N×H×W×3 → normalised float N×3×H×W."""
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std


def resolve_model_path(run: Path | str) -> Path:
    path = Path(run)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise FinegrainError(f"{run}: no trained model here (expected a run folder with {MODEL_FILE} or a .pt file)")
    return path


class Embedder:
    """Batched embedding with a trained model, optional test-time augmentation and the model's normaliser."""

    def __init__(self, model: EmbeddingModel, preprocess: Preprocess, batch_size: int = 256, extra: dict | None = None,
                 tta: Sequence[str] = (), normalizer: FeatureNormalizer | None = None):
        self.model = model.eval()
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.extra = dict(extra or {})
        self.tta = parse_tta(tta)
        self.normalizer = normalizer

    @classmethod
    def load(cls, run: Path | str, batch_size: int = 256, tta: str | Sequence[str] | None = None,
             normalize: bool = True) -> Embedder:
        """A run folder or model file; a ``finegrain combine`` meta-model loads as a MetaEmbedder.

        ``normalize=False`` ignores a normaliser stored in the file (to fit a new one, or compare).
        """
        path = resolve_model_path(run)
        payload = read_payload(path, formats=(FORMAT, META_FORMAT))
        if payload["format"] == META_FORMAT:
            from finegrain.infer.meta import MetaEmbedder

            return MetaEmbedder.from_payload(payload, path, batch_size=batch_size, tta=tta, normalize=normalize)
        extra = dict(payload.get("extra") or {})
        pre = extra.get("preprocess")
        if not pre:
            raise FinegrainError(f"{run}: the model file has no preprocessing settings")
        norm = extra.get("normalization") if normalize else None
        preprocess = Preprocess(pre["image_size"], tuple(pre["mean"]), tuple(pre["std"]))
        return cls(model_from_payload(payload, path), preprocess, batch_size, extra, tta=parse_tta(tta),
                   normalizer=FeatureNormalizer.from_dict(norm) if norm else None)

    @property
    def image_size(self) -> int:
        return self.preprocess.image_size

    @property
    def embedding_size(self) -> int:
        if self.normalizer is not None and self.normalizer.output_size:
            return self.normalizer.output_size
        return self.raw_embedding_size

    @property
    def raw_embedding_size(self) -> int:
        """The size before the normaliser (a scoring model's output is one number per image)."""
        return getattr(self.model.head, "embedding_size", 1)

    def _embed_batch(self, images: np.ndarray) -> np.ndarray:
        """uint8 N×S×S×3 → unit N×E (TTA views averaged), before the normaliser."""
        return embed_with_tta(self.model, self.preprocess.to_tensor(images), self.tta).numpy()

    @torch.no_grad()
    def embed_array(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Embed uint8 images already resized to image_size (N×S×S×3); returns float32 N×E."""
        n = len(images)
        out: list[np.ndarray] = []
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            # A slice of an array is a view; only lists (or cache rows) need stacking.
            chunk = images[start:stop] if isinstance(images, np.ndarray) else np.stack(
                [images[i] for i in range(start, stop)])
            out.append(self._embed_batch(chunk))
        if not out:
            return np.zeros((0, self.embedding_size), np.float32)
        emb = np.concatenate(out).astype(np.float32, copy=False)
        return self.normalizer.transform(emb) if self.normalizer is not None else emb

    def embed_paths(
        self, paths: Sequence[Path], batch_size: int | None = None
    ) -> Iterator[tuple[list[Path], np.ndarray, list[Problem]]]:
        """Stream (good paths, embeddings, problems) batch by batch, decoding in a thread pool.

        Memory stays at one batch of images however large the gallery is; OpenCV releases the GIL
        while decoding, so threads overlap decoding with the model's forward pass.
        """
        size = batch_size or self.batch_size
        with ThreadPoolExecutor(max_workers=2) as pool:
            for start in range(0, len(paths), size):
                chunk = list(paths[start : start + size])
                results = list(pool.map(lambda p: _load_resized(p, self.image_size), chunk))
                good = [(p, img) for p, img in zip(chunk, results) if not isinstance(img, Problem)]
                problems = [img for img in results if isinstance(img, Problem)]
                emb = self.embed_array(np.stack([img for _, img in good])) if good else self.embed_array([])
                yield [p for p, _ in good], emb, problems


def _load_resized(path: Path, size: int) -> np.ndarray | Problem:
    """Decode and resize one image, or say why it cannot be used."""
    try:
        return resize_square(decode_image(Path(path), target_size=size), size)
    except DataError as e:
        return e.problems[0] if e.problems else Problem(path, e.summary)
