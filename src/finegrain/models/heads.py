"""Pooling and the embedding head: feature map -> pooled vector -> linear -> unit-norm embedding."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finegrain.errors import ConfigError

POOLINGS = ("avg", "gem")


class GeM(nn.Module):
    """Generalized-mean pooling: ``mean(x.clamp(eps) ** p) ** (1 / p)`` over H and W -> ``[B, C, 1, 1]``.

    p = 1 is average pooling and p -> inf approaches max pooling; learning p lets the net pick how peaked the
    pooling is, which helps fine-grained retrieval where a few discriminative parts matter.
    """

    def __init__(self, p: float = 3.0, learnable: bool = True, eps: float = 1e-6) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or p <= 0:
            raise ConfigError(f"gem_p must be a positive number, got {p!r}")
        if not eps > 0:
            raise ConfigError(f"GeM eps must be positive, got {eps!r}")
        self.eps = float(eps)
        p_tensor = torch.tensor(float(p))
        # A buffer when frozen, so the value still travels in the state_dict either way.
        if learnable:
            self.p = nn.Parameter(p_tensor)
        else:
            self.register_buffer("p", p_tensor)

    @property
    def learnable(self) -> bool:
        return isinstance(self.p, nn.Parameter)

    def forward(self, x: Tensor) -> Tensor:
        # Below 1 the mean drops under average pooling and 1/p blows up as p -> 0; clamping keeps a
        # learned p that drifts low harmless (it just acts as average pooling).
        p = self.p.clamp(min=1.0)
        # The clamp on x keeps pow() real for negative activations (ELU) and away from 0 ** p gradients.
        return x.clamp(min=self.eps).pow(p).mean(dim=(-2, -1), keepdim=True).pow(1.0 / p)

    def extra_repr(self) -> str:
        return f"p={float(self.p.detach()):.4f}, learnable={self.learnable}, eps={self.eps}"


class EmbeddingHead(nn.Module):
    """``pool -> flatten -> dropout -> Linear -> L2-normalise``: ``[B, C, h, w]`` -> ``[B, E]`` unit norm."""

    def __init__(
        self,
        in_features: int,
        embedding_size: int = 128,
        pooling: str = "avg",
        dropout: float = 0.0,
        gem_p: float = 3.0,
        gem_learnable: bool = True,
    ) -> None:
        super().__init__()
        for param, value in (("in_features", in_features), ("embedding_size", embedding_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{param} must be a positive int, got {value!r}")
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.pooling = pooling
        self.pooler: nn.Module = (
            GeM(p=gem_p, learnable=gem_learnable) if pooling == "gem" else nn.AdaptiveAvgPool2d(1)
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, embedding_size)

    @property
    def embedding_size(self) -> int:
        return self.fc.out_features

    def pool(self, features: Tensor) -> Tensor:
        """The pooled ``[B, C]`` vector, before dropout and the linear layer."""
        return torch.flatten(self.pooler(features), 1)

    def forward(self, features: Tensor) -> Tensor:
        return F.normalize(self.fc(self.dropout(self.pool(features))), dim=1)

    def config(self) -> dict[str, Any]:
        # in_features is read from the live linear layer, so a widened backbone + head is recorded as is.
        cfg: dict[str, Any] = {
            "in_features": self.fc.in_features,
            "embedding_size": self.fc.out_features,
            "pooling": self.pooling,
            "dropout": float(self.dropout.p),
        }
        if isinstance(self.pooler, GeM):
            cfg["gem_p"] = float(self.pooler.p.detach())
            cfg["gem_learnable"] = self.pooler.learnable
        return cfg


class RegressionHead(nn.Module):
    """``pool -> flatten -> dropout -> Linear -> 1``: ``[B, C, h, w]`` -> one score per image ``[B]``."""

    def __init__(self, in_features: int, pooling: str = "avg", dropout: float = 0.5) -> None:
        super().__init__()
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features <= 0:
            raise ConfigError(f"in_features must be a positive int, got {in_features!r}")
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}")
        self.pooling = pooling
        self.pooler: nn.Module = GeM() if pooling == "gem" else nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, 1)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc(self.dropout(torch.flatten(self.pooler(features), 1))).squeeze(1)

    def config(self) -> dict[str, Any]:
        return {"in_features": self.fc.in_features, "pooling": self.pooling, "dropout": float(self.dropout.p)}
