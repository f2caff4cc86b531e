"""Feature normalisation fitted on training embeddings and stored in the model file.

``l2``: unit length only. ``center``: subtract the training mean, then unit length (removes the
direction all embeddings share, which otherwise inflates every cosine). ``whiten``: centre, project
on the top ``dim`` principal axes scaled by 1/√variance (PCA whitening, so the training embeddings'
covariance becomes the identity), then unit length: rare directions count as much as common ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA

from finegrain.errors import ConfigError, DataError

METHODS = ("l2", "center", "whiten")


@dataclass
class FeatureNormalizer:
    method: str
    mean: np.ndarray | None = None  # E
    projection: np.ndarray | None = None  # E × dim, whitening folded in

    @property
    def output_size(self) -> int | None:
        return None if self.projection is None else int(self.projection.shape[1])

    @classmethod
    def fit(cls, embeddings: np.ndarray, method: str = "whiten", dim: int | None = None) -> FeatureNormalizer:
        if method not in METHODS:
            raise ConfigError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
        x = np.asarray(embeddings, dtype=np.float64)
        if method == "l2":
            return cls("l2")
        if len(x) < 2:
            raise DataError(f"normalisation needs at least 2 training embeddings, got {len(x)}")
        if method == "center":
            return cls("center", mean=x.mean(axis=0).astype(np.float32))
        limit = min(x.shape[0] - 1, x.shape[1])
        dim = limit if dim is None else dim
        if not 1 <= dim <= limit:
            raise ConfigError(f"--dim must be between 1 and {limit} (embedding size, images - 1), not {dim}")
        pca = PCA(n_components=dim, svd_solver="full").fit(x)
        projection = pca.components_.T / np.sqrt(pca.explained_variance_)[None, :]
        return cls("whiten", mean=pca.mean_.astype(np.float32), projection=projection.astype(np.float32))

    def transform(self, embeddings: np.ndarray, l2: bool = True) -> np.ndarray:
        x = np.asarray(embeddings, dtype=np.float32)
        if self.mean is not None:
            x = x - self.mean
        if self.projection is not None:
            x = x @ self.projection
        if l2:
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x.astype(np.float32, copy=False)

    def describe(self) -> str:
        return f"{self.method}:{self.output_size}" if self.output_size else self.method

    def to_artifact(self, prefix: str) -> tuple[dict, dict[str, torch.Tensor]]:
        """The manifest entry and the tensors (under ``prefix.``) that store this normaliser in a model file."""
        tensors = {f"{prefix}.{key}": torch.from_numpy(np.ascontiguousarray(getattr(self, key)))
                   for key in ("mean", "projection") if getattr(self, key) is not None}
        return {"method": self.method, "output_size": self.output_size}, tensors

    @classmethod
    def from_artifact(cls, entry: dict | None, tensors: dict[str, torch.Tensor], prefix: str,
                      where: object = "model file") -> FeatureNormalizer | None:
        if entry is None:
            return None
        if entry.get("method") not in METHODS:
            raise ConfigError(f"{where}: unknown feature normalisation {entry.get('method')!r}")
        arrays = {key: tensors[f"{prefix}.{key}"].numpy() for key in ("mean", "projection")
                  if f"{prefix}.{key}" in tensors}
        return cls(entry["method"], **arrays)
