"""The classification head and model: pooled features -> class logits, linear or cosine.

A classifier is also an embedding model: ``forward`` gives the unit-norm pooled features, so an index, a
search or a verification can use a classifier's file as they use any embedding model's; ``logits`` gives the
class scores. The classes' names live in the model file's manifest (``classifier``), not here.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finegrain.errors import ConfigError
from finegrain.models.heads import POOLINGS, GeM

HEADS = ("linear", "cosine")


class ClassifierHead(nn.Module):
    """``pool -> flatten -> dropout -> fc``; ``cosine`` scores ``scale · cos(features, class weight)`` with no bias
    (a normalised classifier, the one LDAM's margins are defined on)."""

    def __init__(self, in_features: int, num_classes: int, kind: str = "linear", pooling: str = "gem",
                 dropout: float = 0.0, scale: float = 16.0) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if kind not in HEADS:
            raise ConfigError(f"--head must be one of {', '.join(HEADS)} (or knn), not {kind!r}")
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        if not 0.0 <= dropout < 1.0 or not scale > 0:
            raise ConfigError(f"classifier head: dropout must be in [0, 1) and scale positive, got {dropout}, {scale}")
        self.kind, self.pooling, self.scale = kind, pooling, float(scale)
        self.pooler: nn.Module = GeM() if pooling == "gem" else nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes, bias=kind == "linear")

    @property
    def embedding_size(self) -> int:
        return self.fc.in_features

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    def pool(self, features: Tensor) -> Tensor:
        return torch.flatten(self.pooler(features), 1)

    def forward(self, features: Tensor) -> Tensor:
        """The unit-norm pooled features (the embedding a classifier offers to retrieval)."""
        return F.normalize(self.pool(features), dim=1)

    def cosines(self, pooled: Tensor) -> Tensor:
        return F.linear(F.normalize(pooled, dim=1), F.normalize(self.fc.weight, dim=1))

    def logits_from_pooled(self, pooled: Tensor) -> Tensor:
        if self.kind == "cosine":
            return self.scale * self.cosines(pooled)
        return self.fc(self.dropout(pooled))

    def logits(self, features: Tensor) -> Tensor:
        return self.logits_from_pooled(self.pool(features))

    def config(self) -> dict[str, Any]:
        return {"in_features": self.fc.in_features, "num_classes": self.fc.out_features, "kind": self.kind,
                "pooling": self.pooling, "dropout": float(self.dropout.p), "scale": self.scale}
