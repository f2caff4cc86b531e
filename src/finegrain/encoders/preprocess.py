"""How a model sees an image: the square input size and the colour normalisation it was trained with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from finegrain.errors import FinegrainError


@dataclass(frozen=True)
class Preprocess:
    """Stored in the model file's manifest, so a model is used without its training flags."""

    image_size: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    face_margin: float | None = None  # a face model (--faces): images are crops of their main face, this margin

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std)}
        if self.face_margin is not None:
            out["faces"] = {"margin": self.face_margin}
        return out

    def face_cropper(self):
        """The ``MainFaceCropper`` a face model's images go through, or None."""
        if self.face_margin is None:
            return None
        from finegrain.detect.main_face import MainFaceCropper

        return MainFaceCropper(self.face_margin)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, where: object = "model file") -> Preprocess:
        if not isinstance(d, dict) or not isinstance(d.get("image_size"), int):
            raise FinegrainError(f"{where}: the model file has no preprocessing settings")
        faces = d.get("faces")
        return cls(d["image_size"], tuple(d.get("mean", cls.mean)), tuple(d.get("std", cls.std)),
                   float(faces["margin"]) if faces else None)

    def to_tensor(self, images: np.ndarray) -> torch.Tensor:
        """uint8 N×H×W×3 → normalised float N×3×H×W."""
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std
