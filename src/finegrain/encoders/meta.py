"""Meta-embeddings: one encoder whose embedding is the concatenation of several models' embeddings.

Each component embeds the image at its own input size, with its own normaliser; the unit vectors are
concatenated and divided by √(number of models), so the result is unit length again and its cosine
similarity is the mean of the components' similarities. A combined file holds every component's
manifest and weights (under ``components.<i>.``), so it is self-contained and loads wherever one model does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from finegrain.artifact import tensors_under
from finegrain.encoders.encoder import Encoder, SingleEncoder
from finegrain.encoders.normalize import FeatureNormalizer
from finegrain.errors import FinegrainError


def _resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1] == size:
        return images
    return np.stack([cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) for img in images])


class MetaEncoder(Encoder):
    """Images arrive at the largest component's input size and are resized for each smaller one."""

    output = "embedding"

    def __init__(self, components: Sequence[SingleEncoder], normalizer: FeatureNormalizer | None = None,
                 tta: Sequence[str] = (), batch_size: int = 256, manifest: dict[str, Any] | None = None,
                 path: Path | None = None):
        super().__init__(manifest, path, tta, batch_size)
        if not components:
            raise FinegrainError("a meta-embedding needs at least one model")
        self.components = list(components)
        for c in self.components:
            c.tta, c.batch_size = self.tta, batch_size  # one TTA for the whole encoder
        self.normalizer = normalizer
        # Images are prepared once for every component, so they must all see a photo the same way: whole, or
        # as a crop of its main face with one margin (face models, --faces).
        margins = {None if c.face_cropper is None else c.face_cropper.margin for c in self.components}
        if len(margins) > 1:
            raise FinegrainError("a meta-embedding's models must all take whole images or all take face crops with "
                                 f"one margin (--faces); these differ: {sorted(margins, key=str)}")
        self.face_cropper = next(c.face_cropper for c in self.components)

    @classmethod
    def from_artifact(cls, manifest: dict[str, Any], tensors: dict[str, torch.Tensor], where: object,
                      tta: Sequence[str] | None = None, normalize: bool = True, batch_size: int = 256,
                      path: Path | None = None) -> MetaEncoder:
        components = []
        for i, part in enumerate(manifest.get("components") or []):
            if part.get("kind") != "embedding":
                raise FinegrainError(f"{where}: component {i} is a {part.get('kind')} model, not an embedding model")
            components.append(SingleEncoder.from_artifact(part, tensors_under(tensors, f"components.{i}"),
                                                          f"{where} (component {i})"))
        normalizer = (FeatureNormalizer.from_artifact(manifest.get("normalizer"), tensors, "normalizer", where)
                      if normalize else None)
        return cls(components, normalizer, manifest.get("tta") or () if tta is None else tta, batch_size, manifest,
                   path)

    def to(self, device: torch.device) -> MetaEncoder:
        for component in self.components:
            component.to(device)
        return self

    @property
    def image_size(self) -> int:
        return max(c.image_size for c in self.components)

    @property
    def raw_size(self) -> int:
        return sum(c.output_size for c in self.components)

    @property
    def output_size(self) -> int:
        if self.normalizer is not None and self.normalizer.output_size:
            return self.normalizer.output_size
        return self.raw_size

    def _encode_batch(self, images: np.ndarray) -> np.ndarray:
        parts = [c.encode_array(_resize_batch(images, c.image_size)) for c in self.components]
        out = np.concatenate(parts, axis=1) / np.sqrt(len(parts))
        return self.normalizer.transform(out) if self.normalizer is not None else out
