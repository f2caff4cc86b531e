"""The 1-nearest-neighbour identity of a query, with "unknown" under a similarity threshold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from finegrain.errors import DataError
from finegrain.eval.identification import Label, identity_codes


@dataclass(frozen=True)
class Identification:
    """The 1-NN answer for one query.

    ``label`` is None (and ``unknown`` True) when even the nearest identity is less similar than the
    threshold; ``nearest`` still names it, so a near miss can be inspected. ``confidence`` is the cosine
    similarity of the nearest labelled gallery vector. ``alternatives`` are the next-best distinct
    identities with their best similarity, best first.
    """

    label: Label | None
    confidence: float
    unknown: bool
    nearest: Label
    alternatives: list[tuple[Label, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"identity": self.label, "confidence": self.confidence, "unknown": self.unknown,
                "nearest": self.nearest,
                "alternatives": [{"identity": label, "similarity": s} for label, s in self.alternatives]}


def identity_similarities(similarities: np.ndarray,
                          labels: Sequence[Label | None]) -> tuple[list[Label], np.ndarray]:
    """Per query, the best similarity to each distinct labelled identity: (identities, Q×I matrix)."""
    similarities = np.atleast_2d(np.asarray(similarities))
    if similarities.shape[1] != len(labels):
        raise DataError(f"similarities for {similarities.shape[1]} gallery items but {len(labels)} labels")
    ids, codes = identity_codes(labels)
    if not ids:
        raise DataError("the gallery has no labelled images, so there is no identity to give")
    keep = np.flatnonzero(codes >= 0)
    order = keep[np.argsort(codes[keep], kind="stable")]  # columns grouped by identity
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    return list(ids), np.maximum.reduceat(similarities[:, order], starts, axis=1)


def nearest_identity(similarities: np.ndarray, labels: Sequence[Label | None], threshold: float,
                     alternatives: int = 0) -> list[Identification]:
    """1-NN identification of each query row of ``similarities`` (queries × gallery cosine similarities).

    The answer is the label of the most similar labelled gallery image; under ``threshold`` it is
    "unknown", because a nearest neighbour always exists, even for someone the gallery has never seen.
    """
    if alternatives < 0:
        raise DataError(f"alternatives must be 0 or more, got {alternatives}")
    identities, per_identity = identity_similarities(similarities, labels)
    top = np.argsort(-per_identity, axis=1, kind="stable")[:, : alternatives + 1]
    results = []
    for row, order in zip(per_identity, top):
        nearest, confidence = identities[order[0]], float(row[order[0]])
        unknown = not confidence >= threshold  # a NaN similarity is unknown too
        results.append(Identification(label=None if unknown else nearest, confidence=confidence, unknown=unknown,
                                      nearest=nearest,
                                      alternatives=[(identities[j], float(row[j])) for j in order[1:]]))
    return results
