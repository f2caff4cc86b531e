"""The 45 calibration patterns: 5 scales × 3 x-shifts × 3 y-shifts (shifts relative to the window size).

A pattern ``n = (s, dx, dy)`` *displaces* a true box ``(x, y, w, h)`` to the window
``(x + dx·w, y + dy·h, s·w, s·h)``. A calibration net looks at a window and says which displacement produced
it; *correcting* by the same pattern, ``(x − dx·w/s, y − dy·h/s, w/s, h/s)``, returns the true box. At
inference the correction uses the probability-weighted mean of the patterns whose probability is above the
uniform level 1/45, as the original cascade does.
"""

from __future__ import annotations

import itertools

import numpy as np

SCALES = (0.83, 0.91, 1.0, 1.10, 1.21)
SHIFTS = (-0.17, 0.0, 0.17)
PATTERNS = np.array([(s, dx, dy) for s, dx, dy in itertools.product(SCALES, SHIFTS, SHIFTS)], dtype=np.float64)
NUM_PATTERNS = len(PATTERNS)  # 45
IDENTITY = int(np.flatnonzero((PATTERNS == (1.0, 0.0, 0.0)).all(axis=1))[0])


def _xywh(boxes: np.ndarray) -> tuple[np.ndarray, ...]:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]


def _xyxy(x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.stack([x, y, x + w, y + h], axis=1)


def displace(boxes: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """The window each pattern makes of each box (both per row: ``patterns`` is ``(N, 3)``)."""
    x, y, w, h = _xywh(boxes)
    s, dx, dy = np.asarray(patterns, dtype=np.float64).reshape(-1, 3).T
    return _xyxy(x + dx * w, y + dy * h, s * w, s * h)


def correct(windows: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """Undo ``displace``: the box that ``patterns`` would have displaced to these windows."""
    x, y, w, h = _xywh(windows)
    s, dx, dy = np.asarray(patterns, dtype=np.float64).reshape(-1, 3).T
    return _xyxy(x - dx * w / s, y - dy * h / s, w / s, h / s)


def mean_pattern(probabilities: np.ndarray) -> np.ndarray:
    """Per window, the probability-weighted mean (s, dx, dy) of the patterns above 1/45.

    A window whose probabilities are all at or below uniform gets the identity pattern (no change).
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1, NUM_PATTERNS)
    weights = np.where(p > 1.0 / NUM_PATTERNS, p, 0.0)
    total = weights.sum(axis=1, keepdims=True)
    mean = weights @ PATTERNS / np.maximum(total, 1e-12)
    return np.where(total > 0, mean, PATTERNS[IDENTITY])


def calibrate(windows: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Move and rescale windows by their calibration net's output."""
    return correct(windows, mean_pattern(probabilities))
