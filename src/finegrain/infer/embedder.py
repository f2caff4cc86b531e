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
from finegrain.models import EmbeddingModel, load_model

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
    def __init__(self, model: EmbeddingModel, preprocess: Preprocess, batch_size: int = 256, extra: dict | None = None):
        self.model = model.eval()
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.extra = dict(extra or {})

    @classmethod
    def load(cls, run: Path | str, batch_size: int = 256) -> Embedder:
        model, extra = load_model(resolve_model_path(run))
        pre = extra.get("preprocess")
        if not pre:
            raise FinegrainError(f"{run}: the model file has no preprocessing settings")
        return cls(model, Preprocess(pre["image_size"], tuple(pre["mean"]), tuple(pre["std"])), batch_size, extra)

    @property
    def image_size(self) -> int:
        return self.preprocess.image_size

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
            out.append(self.model(self.preprocess.to_tensor(chunk)).numpy())
        if not out:  # a scoring model has no embedding_size: its output is one number per image
            return np.zeros((0, getattr(self.model.head, "embedding_size", 1)), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

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
