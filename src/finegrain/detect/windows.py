"""Image pyramids and vectorised window extraction: no per-window Python loop anywhere."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def to_grey(image: np.ndarray) -> np.ndarray:
    """H×W or H×W×3 (RGB) uint8 → H×W uint8 grey."""
    if image.ndim == 3:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return image


def pyramid_scales(height: int, width: int, min_face: float, factor: float, window: int = 12) -> list[float]:
    """Scales at which a ``window``-pixel window covers faces from ``min_face`` pixels up to the whole image."""
    scales, scale = [], window / min_face
    while min(height, width) * scale >= window:
        scales.append(scale)
        scale *= factor
    return scales


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # INTER_AREA averages when shrinking (no aliasing); it degrades to nearest when growing, so use linear there.
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def octaves(image: np.ndarray, smallest: int = 12) -> list[torch.Tensor]:
    """The image at 1, 1/2, 1/4, … as ``(1, 1, H, W)`` float tensors, down to about ``smallest`` pixels."""
    levels = [image]
    while min(levels[-1].shape[:2]) >= 2 * smallest:
        levels.append(cv2.pyrDown(levels[-1]))
    return [torch.from_numpy(level).float()[None, None] for level in levels]


def crop_windows(levels: list[torch.Tensor], boxes: np.ndarray, size: int) -> torch.Tensor:
    """Resample each box (original pixel coordinates, ``x1 y1 x2 y2``) to ``size × size``: ``(N, 1, size, size)``.

    Each box is read from the octave where it is between ``size`` and ``2·size`` pixels wide, so bilinear
    sampling never shrinks by more than 2× (no aliasing to speak of); one ``grid_sample`` call per octave.
    Parts of a window outside the image repeat the border pixels.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = torch.empty(len(boxes), 1, size, size)
    if not len(boxes):
        return out
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    octave = np.clip(np.floor(np.log2(np.maximum(side / size, 1.0))), 0, len(levels) - 1).astype(int)
    steps = (torch.arange(size, dtype=torch.float64) + 0.5) / size  # pixel centres across the window, 0–1
    for o in np.unique(octave):
        rows = np.flatnonzero(octave == o)
        level = levels[o]
        height, width = level.shape[-2:]
        b = torch.from_numpy(boxes[rows]) / 2.0**o
        xs = b[:, 0:1] + steps[None] * (b[:, 2:3] - b[:, 0:1])  # (n, size) sample positions in level pixels
        ys = b[:, 1:2] + steps[None] * (b[:, 3:4] - b[:, 1:2])
        # align_corners=False: normalised −1 and 1 are the outer edges of the border pixels.
        gx = (xs / width * 2 - 1)[:, None, :].expand(-1, size, -1)
        gy = (ys / height * 2 - 1)[:, :, None].expand(-1, -1, size)
        grid = torch.stack([gx, gy], dim=-1).float()
        out[rows] = F.grid_sample(level.expand(len(rows), -1, -1, -1), grid, mode="bilinear",
                                  padding_mode="border", align_corners=False)
    return out


def grid_windows(rows: np.ndarray, cols: np.ndarray, scale: float, window: int = 12, stride: int = 2) -> np.ndarray:
    """Boxes, in original pixels, of the 12-net output cells ``(rows, cols)`` of a pyramid level at ``scale``."""
    x1 = cols * stride / scale
    y1 = rows * stride / scale
    side = window / scale
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1).astype(np.float64)


def level_patches(level: torch.Tensor, rows: np.ndarray, cols: np.ndarray, window: int = 12,
                  stride: int = 2) -> torch.Tensor:
    """The exact ``window × window`` pixels under 12-net cells ``(rows, cols)``: ``(N, 1, window, window)``."""
    offsets = torch.arange(window)
    r = torch.from_numpy(rows * stride)[:, None] + offsets[None]  # (N, window)
    c = torch.from_numpy(cols * stride)[:, None] + offsets[None]
    return level[0, 0][r[:, :, None], c[:, None, :]][:, None]
