"""Box arithmetic on ``(N, 4)`` float arrays of ``x1 y1 x2 y2`` (pixels, x2/y2 exclusive)."""

from __future__ import annotations

import numpy as np


def box_area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` with every box in ``b``: shape ``(len(a), len(b))``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def paired_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``a[i]`` with ``b[i]`` for every row (the diagonal of ``iou_matrix`` without the rest)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    inter = np.prod(np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None), axis=1)
    union = box_area(a) + box_area(b) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns the kept indices, best score first.

    Vectorised per kept box: each step drops every remaining box that overlaps the current best by more
    than ``iou_threshold``, so the loop runs once per *kept* box, not once per pair. Coordinates live in
    separate 1-D arrays in score order, so each step works on contiguous slices (the 12-net stage's NMS over
    thousands of windows is a large share of detection time).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[order, k]) for k in range(4))
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep: list[int] = []
    while order.size:
        keep.append(int(order[0]))
        width = np.maximum(np.minimum(x2[0], x2[1:]) - np.maximum(x1[0], x1[1:]), 0)
        height = np.maximum(np.minimum(y2[0], y2[1:]) - np.maximum(y1[0], y1[1:]), 0)
        inter = width * height
        survive = inter <= iou_threshold * np.maximum(area[0] + area[1:] - inter, 1e-12)
        order, x1, y1, x2, y2, area = (a[1:][survive] for a in (order, x1, y1, x2, y2, area))
    return np.asarray(keep, dtype=np.int64)


def square(boxes: np.ndarray) -> np.ndarray:
    """The square of side max(w, h) with the same centre (windows fed to the nets are square)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None] / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def scale_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """Grow (factor > 1) or shrink each box about its centre."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * factor / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def drop_nested(boxes: np.ndarray, scores: np.ndarray, inside: float = 0.7) -> list[int]:
    """Indices of the detections to keep, best first. Of two boxes where one lies mostly (``inside`` of its
    area) within the other, only the better-scoring one stays: it is the same face found again at another
    scale (faces do not nest), and a tracker would start a second track on it, a service report a second
    person. NMS keeps such pairs: their overlap over their union is small."""
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    kept: list[int] = []
    for i in order:
        if not kept:
            kept.append(int(i))
            continue
        k = np.array(kept)
        w = np.clip(np.minimum(boxes[i, 2], boxes[k, 2]) - np.maximum(boxes[i, 0], boxes[k, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[k, 3]) - np.maximum(boxes[i, 1], boxes[k, 1]), 0, None)
        if not np.any(w * h >= inside * np.minimum(areas[i], areas[k])):
            kept.append(int(i))
    return kept
