"""Detection-to-track assignment: box overlap and appearance costs, solved by the Hungarian method."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

INFEASIBLE = 1e6  # a cost no accepted match can have


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (N×4, x1 y1 x2 y2) with every box in ``b`` (M×4)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


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
