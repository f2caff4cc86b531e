"""A model-free appearance descriptor for telling faces in one video apart when no embedding model is given.

Two views of one face a few frames apart differ by a small shift and scale; two people differ in shading
and colour. A zero-mean, unit-norm 16×16 grey patch (normalised cross-correlation) and a centred hue and
saturation histogram capture both, and cost nothing next to the detector.
"""

from __future__ import annotations

import cv2
import numpy as np

PATCH = 16
HUE_BINS, SAT_BINS = 12, 4


def describe_crops(crops: list[np.ndarray]) -> np.ndarray:
    """Unit vectors (N×D) for RGB face crops of any size."""
    out = []
    for crop in crops:
        grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (PATCH, PATCH), interpolation=cv2.INTER_AREA)
        patch = grey.astype(np.float32).ravel()
        patch -= patch.mean()
        patch /= max(float(np.linalg.norm(patch)), 1e-6)
        hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [HUE_BINS, SAT_BINS], [0, 180, 0, 256]).ravel()
        hist = np.sqrt(hist / max(float(hist.sum()), 1.0))
        hist -= hist.mean()
        hist /= max(float(np.linalg.norm(hist)), 1e-6)
        vector = np.r_[0.8 * patch, 0.6 * hist]
        out.append(vector / max(float(np.linalg.norm(vector)), 1e-6))
    return np.asarray(out, np.float32).reshape(len(crops), -1)
