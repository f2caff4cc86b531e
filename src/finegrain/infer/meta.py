"""Meta-embeddings: one model whose embedding is the concatenation of several models' embeddings.

Each component embeds the image at its own input size, with its own normaliser; the unit vectors are
concatenated and divided by √(number of models), so the result is unit length again and its cosine
similarity is the mean of the components' similarities. A ``combine`` file holds the components'
whole model payloads, so it is self-contained and loads wherever a single model does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from finegrain.errors import FinegrainError
from finegrain.infer.embedder import META_FORMAT, Embedder, Preprocess, resolve_model_path
from finegrain.infer.normalize import FeatureNormalizer
from finegrain.models.model import FORMAT, VERSION, model_from_payload, read_payload
from finegrain.utils import torch_save_atomic


def _resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1] == size:
        return images
    return np.stack([cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) for img in images])


class MetaEmbedder(Embedder):
    """An Embedder over component Embedders; images arrive at the largest component's input size."""

    def __init__(self, components: Sequence[Embedder], batch_size: int = 256, extra: dict | None = None,
                 normalizer: FeatureNormalizer | None = None):
        if not components:
            raise FinegrainError("a meta-embedding needs at least one model")
        self.components = list(components)
        size = max(c.image_size for c in self.components)
        super().__init__(self.components[0].model, Preprocess(size), batch_size, extra, normalizer=normalizer)
        self.tta = self.components[0].tta

    @classmethod
    def from_payload(cls, payload: dict, path: Path, batch_size: int = 256, tta=None,
                     normalize: bool = True) -> MetaEmbedder:
        components = []
        for i, part in enumerate(payload.get("components") or []):
            extra = dict(part.get("extra") or {})
            if extra.get("task", "embed") != "embed":
                raise FinegrainError(f"{path}: component {i} is not an embedding model")
            pre = extra["preprocess"]
            norm = extra.get("normalization")
            components.append(Embedder(
                model_from_payload(part, f"{path} (component {i})"),
                Preprocess(pre["image_size"], tuple(pre["mean"]), tuple(pre["std"])), batch_size, extra, tta=tta,
                normalizer=FeatureNormalizer.from_dict(norm) if norm else None,
            ))
        extra = dict(payload.get("extra") or {})
        norm = extra.get("normalization") if normalize else None
        return cls(components, batch_size, extra, FeatureNormalizer.from_dict(norm) if norm else None)

    @property
    def raw_embedding_size(self) -> int:
        return sum(c.embedding_size for c in self.components)

    def _embed_batch(self, images: np.ndarray) -> np.ndarray:
        parts = [c.embed_array(_resize_batch(images, c.image_size)) for c in self.components]
        return np.concatenate(parts, axis=1) / np.sqrt(len(parts))


def combine_models(runs: Sequence[Path | str], out: Path | str) -> dict:
    """Write a meta-model of ``runs`` to ``out`` (a run folder, or a .pt file); returns a summary."""
    if len(runs) < 2:
        raise FinegrainError("combine needs at least two models")
    components = []
    for run in runs:
        path = resolve_model_path(run)
        payload = read_payload(path, formats=(FORMAT, META_FORMAT))
        if payload["format"] == META_FORMAT:  # flatten: a meta of metas is a meta of their parts
            components += payload["components"]
            continue
        if (payload.get("extra") or {}).get("task", "embed") != "embed":
            raise FinegrainError(f"{path}: only embedding models can be combined (this one scores images)")
        components.append(payload)
    out = Path(out)
    target = out if out.suffix == ".pt" else out / "model.pt"
    os.makedirs(target.parent, exist_ok=True)
    meta = {"format": META_FORMAT, "version": VERSION, "components": components,
            "extra": {"task": "embed", "combined_from": [str(r) for r in runs]}}
    torch_save_atomic(meta, target)
    embedder = Embedder.load(target)
    return {"model": str(target), "components": len(components), "embedding_size": embedder.embedding_size,
            "image_size": embedder.image_size}
