"""Detection-to-track assignment: box overlap and appearance costs, solved by the Hungarian method."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

INFEASIBLE = 1e6  # a cost no accepted match can have


def association_cost(overlap: np.ndarray, similarity: np.ndarray | None, appearance_weight: float,
                     min_iou: float, min_similarity: float) -> np.ndarray:
    """Tracks × detections cost in [0, 1]: a blend of (1 − IoU) and the appearance distance (1 − cosine) / 2.

    A pair is infeasible when the boxes barely overlap *and* the faces do not look alike: a face reappearing
    away from where its track predicted it can still be matched on appearance, and a face whose look changes
    (turning, blur) on overlap.
    """
    cost = 1.0 - overlap
    if similarity is not None:
        cost = (1 - appearance_weight) * cost + appearance_weight * (1.0 - similarity) / 2.0
        feasible = (overlap >= min_iou) | (similarity >= min_similarity)
    else:
        feasible = overlap >= min_iou
    return np.where(feasible, cost, INFEASIBLE)


def associate(cost: np.ndarray, max_cost: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """The assignment of rows (tracks) to columns (detections) with the least total cost (scipy's
    ``linear_sum_assignment``), keeping pairs at or under ``max_cost``: (matches, unmatched rows, unmatched columns)."""
    cost = np.asarray(cost, np.float64)
    rows, cols = (linear_sum_assignment(cost) if cost.size else (np.zeros(0, int), np.zeros(0, int)))
    matches = [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] <= max_cost]
    matched_rows, matched_cols = {r for r, _ in matches}, {c for _, c in matches}
    return (matches, [r for r in range(cost.shape[0]) if r not in matched_rows],
            [c for c in range(cost.shape[1]) if c not in matched_cols])
