"""Training windows for the cascade: jittered faces, random and hard non-face windows, calibration samples.

Every window is cut with ``crop_windows`` (the same resampling the detector uses at inference), so training and
detection see identical pixels for identical boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from finegrain.boxes import paired_iou, square
from finegrain.detect.calibration import NUM_PATTERNS, PATTERNS, displace
from finegrain.detect.windows import crop_windows, octaves


@dataclass
class FaceImage:
    """A grey image and the square face windows in it (``x1 y1 x2 y2``).

    ``context`` says whether the image shows what lies around the face; a tight crop does not, so it serves as
    a positive but not as a calibration sample (a displaced window would read invented border pixels).
    """

    grey: np.ndarray
    boxes: np.ndarray
    context: bool = True


def face_window(boxes: np.ndarray) -> np.ndarray:
    """An annotated box → the square window the nets are trained on: same centre, side = mean of width and height."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1]))[:, None] / 4
    return np.concatenate([centre - half, centre + half], axis=1)


def _jitter(boxes: np.ndarray, rng: np.random.Generator, shift: float, scale: float) -> np.ndarray:
    side = boxes[:, 2:3] - boxes[:, 0:1]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + rng.uniform(-shift, shift, (len(boxes), 2)) * side
    half = side * np.exp(rng.uniform(-np.log(1 + scale), np.log(1 + scale), (len(boxes), 1))) / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def photometric(windows: torch.Tensor, rng: np.random.Generator, flip: bool = True) -> torch.Tensor:
    """Random contrast, brightness, gamma, blur, fading and noise per window, and horizontal flips: real photos are
    often dark, flat, grainy or blurred scans, unlike the clean crops faces come from."""
    n = len(windows)
    if not n:
        return windows
    contrast = torch.from_numpy(rng.uniform(0.5, 1.4, (n, 1, 1, 1))).float()
    brightness = torch.from_numpy(rng.uniform(-50, 40, (n, 1, 1, 1))).float()
    gamma = torch.from_numpy(np.exp(rng.uniform(-0.5, 0.6, (n, 1, 1, 1)))).float()
    mean = windows.mean(dim=(1, 2, 3), keepdim=True)
    out = ((windows - mean) * contrast + mean + brightness).clamp(0, 255)
    out = 255 * (out / 255) ** gamma
    blurred = torch.from_numpy(rng.random(n) < 0.3)
    if blurred.any():  # shrink and re-grow: the softness of an upscaled small face
        size = windows.shape[-1]
        small = max(6, round(size * rng.uniform(0.4, 0.8)))
        down = F.interpolate(out[blurred], size=(small, small), mode="area")
        out[blurred] = F.interpolate(down, size=(size, size), mode="bilinear", align_corners=False)
    faded = torch.from_numpy(rng.random(n) < 0.3)
    if faded.any():  # old scans and shadowed faces: a fraction of the contrast, often darker too
        k = int(faded.sum())
        contrast = torch.from_numpy(rng.uniform(0.2, 0.5, (k, 1, 1, 1))).float()
        darker = torch.from_numpy(rng.uniform(0.4, 1.0, (k, 1, 1, 1))).float()
        mean = out[faded].mean(dim=(1, 2, 3), keepdim=True)
        out[faded] = (out[faded] - mean) * contrast + mean * darker
    noisy = torch.from_numpy(rng.random(n) < 0.3)
    if noisy.any():  # sensor grain and halftone screens
        sigma = torch.from_numpy(rng.uniform(2, 12, (int(noisy.sum()), 1, 1, 1))).float()
        out[noisy] += sigma * torch.from_numpy(rng.standard_normal(tuple(out[noisy].shape))).float()
    out = out.clamp(0, 255)
    if flip:
        mirrored = torch.from_numpy(rng.random(n) < 0.5)
        out[mirrored] = out[mirrored].flip(-1)
    return out


# How far a positive window may sit from the face: the early nets must accept the loosely placed windows of a
# coarse pyramid; the 48-net, which decides the final score, sees well-centred faces.
POSITIVE_JITTER = {12: (0.08, 0.12), 24: (0.06, 0.10), 48: (0.04, 0.06)}


def positive_windows(faces: Sequence[FaceImage], size: int, copies: int, rng: np.random.Generator) -> torch.Tensor:
    """``copies`` shifted and rescaled windows of every face (within ``POSITIVE_JITTER`` of it)."""
    shift, scale = POSITIVE_JITTER[size]
    out = []
    for face in faces:
        boxes = np.repeat(face.boxes, copies, axis=0)
        out.append(crop_windows(octaves(face.grey), _jitter(boxes, rng, shift, scale), size))
    return photometric(torch.cat(out), rng)


def calibration_windows(faces: Sequence[FaceImage], size: int, copies: int,
                        rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows displaced from each face by a random pattern (``copies`` per face), labelled by the pattern.

    Faces without context are used only when no face has any.
    """
    windows, labels = [], []
    if any(face.context for face in faces):
        faces = [face for face in faces if face.context]
    for face in faces:
        pattern = rng.integers(0, NUM_PATTERNS, len(face.boxes) * copies)
        boxes = _jitter(np.repeat(face.boxes, copies, axis=0), rng, 0.01, 0.01)
        windows.append(crop_windows(octaves(face.grey), displace(boxes, PATTERNS[pattern]), size))
        labels.append(pattern)
    return photometric(torch.cat(windows), rng), torch.from_numpy(np.concatenate(labels)).long()


def offset_windows(faces: Sequence[FaceImage], size: int, copies: int, rng: np.random.Generator,
                   max_iou: float = 0.3) -> torch.Tensor:
    """Negatives around faces: windows half off a face, or far too large or small for it (IoU < ``max_iou``).

    Without them the last stage scores a window holding a face and its shoulders as highly as the face itself,
    and every such window is a false positive. Only faces with context give them.
    """
    out = []
    for face in (f for f in faces if f.context):
        boxes = np.repeat(face.boxes, copies * 4, axis=0)  # candidates; about half survive the IoU test
        side = boxes[:, 2:3] - boxes[:, 0:1]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2 + rng.uniform(-0.6, 0.6, (len(boxes), 2)) * side
        half = side * np.exp(rng.uniform(np.log(0.5), np.log(2.0), (len(boxes), 1))) / 2
        windows = np.concatenate([centre - half, centre + half], axis=1)
        windows = windows[paired_iou(windows, boxes) < max_iou][: copies * len(face.boxes)]
        if len(windows):
            out.append(crop_windows(octaves(face.grey), windows, size))
    return photometric(torch.cat(out), rng) if out else torch.zeros(0, 1, size, size)


def random_windows(scenes: Sequence[np.ndarray], size: int, count: int, rng: np.random.Generator,
                   min_side: float = 12.0) -> torch.Tensor:
    """``count`` random square windows (side log-uniform from ``min_side`` to the scene's short side)."""
    per_scene = np.bincount(rng.integers(0, len(scenes), count), minlength=len(scenes))
    out = []
    for grey, n in zip(scenes, per_scene):
        if not n:
            continue
        height, width = grey.shape
        short = min(height, width)
        side = np.exp(rng.uniform(np.log(min_side), np.log(max(short, min_side + 1)), n))
        x1 = rng.uniform(0, np.maximum(width - side, 1))
        y1 = rng.uniform(0, np.maximum(height - side, 1))
        out.append(crop_windows(octaves(grey), np.stack([x1, y1, x1 + side, y1 + side], axis=1), size))
    return photometric(torch.cat(out), rng) if out else torch.zeros(0, 1, size, size)


def cut(scenes: Sequence[np.ndarray], boxes: Sequence[np.ndarray], size: int, rng: np.random.Generator) -> torch.Tensor:
    """Given windows of each scene (e.g. the false detections of the earlier stages), resampled to ``size``."""
    out = [crop_windows(octaves(grey), square(b), size) for grey, b in zip(scenes, boxes) if len(b)]
    return photometric(torch.cat(out), rng) if out else torch.zeros(0, 1, size, size)
