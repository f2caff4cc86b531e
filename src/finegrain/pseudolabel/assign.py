"""Pseudo-label assignment: the nearest gallery identity of each unlabelled embedding, accepted when confident.

An image is accepted when its best identity's cosine similarity reaches ``threshold`` and, with a
``margin``, beats the best *different* identity by at least that much, so images that sit between
two identities are left out. The accepted images are written as a CSV manifest
(``path,label,confidence``) that ``finegrain train`` reads like any other (it ignores the extra column).

The gallery is an index folder made by ``finegrain index`` (its own model embeds the unlabelled
images), or a model run plus labelled data that is embedded here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from finegrain.errors import ConfigError, DataError


@dataclass
class Assignment:
    """Per unlabelled image: the accepted label (None when rejected) and the evidence for it.

    ``nearest`` is the best identity whether accepted or not; ``confidences`` its similarity;
    ``runner_up`` the best different identity's similarity (-inf when the gallery has one identity).
    """

    labels: list[str | None]
    confidences: np.ndarray
    runner_up: np.ndarray
    nearest: list[str]

    @property
    def accepted(self) -> np.ndarray:
        return np.array([label is not None for label in self.labels], dtype=bool)


@dataclass(frozen=True)
class Identities:
    """Gallery columns grouped by label: ``order`` puts each identity's columns together from ``starts``."""

    names: list[str]
    order: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def from_labels(cls, labels: Sequence[str | None]) -> Identities:
        if len(labels) == 0:
            raise DataError("the gallery is empty: there is no identity to assign")
        missing = sum(label is None for label in labels)
        if missing:
            raise DataError(f"{missing} of the {len(labels)} gallery items have no label")
        names, inverse, sizes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True,
                                          return_counts=True)
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return cls([str(n) for n in names], order, starts, sizes)


def check_threshold(threshold: float, margin: float = 0.0, k: int = 1) -> None:
    """Raise a ConfigError naming the flag when a setting is out of range."""
    if not np.isfinite(threshold) or not -1.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold is a cosine similarity, so it must lie in [-1, 1]; got {threshold}")
    if not np.isfinite(margin) or margin < 0:
        raise ConfigError(f"--margin must be a non-negative similarity difference; got {margin}")
    if int(k) != k or k < 1:
        raise ConfigError(f"k must be a positive integer; got {k}")


def _identity_scores(similarity: np.ndarray, ids: Identities, k: int) -> np.ndarray:
    """U×L: each identity's score, the mean of its ``k`` highest similarities (all of them if it has fewer)."""
    grouped = similarity[:, ids.order]
    if k == 1:
        return np.maximum.reduceat(grouped, ids.starts, axis=1)
    scores = np.empty((len(similarity), len(ids.names)), dtype=np.float64)
    for j, (start, size) in enumerate(zip(ids.starts, ids.sizes)):
        block = grouped[:, start : start + size]
        take = min(k, size)
        top = block if take == size else -np.partition(-block, take - 1, axis=1)[:, :take]
        scores[:, j] = top.mean(axis=1)
    return scores


def assign_to_identities(similarity: np.ndarray, ids: Identities, threshold: float, margin: float,
                         k: int) -> Assignment:
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 2 or similarity.shape[1] != len(ids.order):
        raise ValueError(f"similarity must be U×{len(ids.order)} (one column per gallery item), got {similarity.shape}")
    if len(similarity) == 0:
        empty = np.zeros(0, dtype=np.float64)
        return Assignment([], empty, empty.copy(), [])
    scores = _identity_scores(similarity, ids, k)
    rows = np.arange(len(scores))
    best = np.argmax(scores, axis=1)
    confidence = scores[rows, best]
    if scores.shape[1] > 1:
        others = scores.copy()
        others[rows, best] = -np.inf
        runner_up = others.max(axis=1)
    else:
        runner_up = np.full(len(scores), -np.inf)
    ok = (confidence >= threshold) & (confidence - runner_up >= margin)
    nearest = [ids.names[b] for b in best]
    labels = [name if keep else None for name, keep in zip(nearest, ok)]
    return Assignment(labels, confidence, runner_up, nearest)


def assign_labels(
    similarity: np.ndarray,
    gallery_labels: Sequence[str | None],
    threshold: float,
    margin: float = 0.0,
    k: int = 1,
) -> Assignment:
    """Nearest identity per row of a U×G cosine ``similarity`` matrix, accepted only when confident.

    An identity's score is its highest similarity (k=1), or the mean of its k highest (identities
    with fewer than k gallery images use all of theirs), which is less swayed by one odd gallery
    image. A row is accepted when its best score ≥ ``threshold`` and best − runner-up ≥ ``margin``,
    where the runner-up is the best *different* identity. Ties go to the label that sorts first.
    """
    check_threshold(threshold, margin, k)
    return assign_to_identities(similarity, Identities.from_labels(list(gallery_labels)), threshold, margin, int(k))
