"""The detection pipeline: pyramid → fully-convolutional 12-net → calibration → NMS → 24-net → calibration →
NMS → 48-net → calibration → global NMS.

Windows from many images flow through the 24 and 48 stages together in batches of ``batch_size``, so one image
and a folder of thousands both keep the networks busy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from itertools import islice

import numpy as np
import torch
from torch import nn

from finegrain.boxes import nms
from finegrain.detect.calibration import calibrate
from finegrain.detect.nets import NETS, STRIDE_12, fold_batch_norm
from finegrain.detect.windows import crop_windows, grid_windows, level_patches, octaves, pyramid_scales, resize, to_grey
from finegrain.devices import model_device
from finegrain.errors import ConfigError


@dataclass
class CascadeSettings:
    """How the cascade searches; stored in the detector file and overridable per call."""

    min_face: float = 24.0  # smallest face searched for, in pixels
    scale_factor: float = 0.79  # pyramid step
    threshold_12: float = 0.8
    threshold_24: float = 0.5
    threshold_48: float = 0.1  # low on purpose: the final score ranks the rest
    nms_12: float = 0.5  # IoU above which the weaker of two windows is dropped
    nms_24: float = 0.5
    nms_48: float = 0.3
    # If set, the 24- and 48-nets score each window and its mirror image and average the two: faces are near
    # symmetric, the clutter a net mistakes for one rarely is, and two looks rank faces more reliably. Off
    # unless a detector file turns it on (the bundled one does), so older files behave as they did.
    mirror: bool = False
    batch_size: int = 1024  # windows per network call

    def validate(self) -> CascadeSettings:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"--{name.replace('_', '-')}: {why}, got {getattr(self, name)}")

        if self.min_face < 12:
            raise bad("min_face", "must be at least 12 pixels (the smallest window)")
        if not 0.5 <= self.scale_factor < 0.95:
            raise bad("scale_factor", "must be in [0.5, 0.95)")
        for f in fields(self):
            if f.name.startswith(("threshold", "nms")) and not 0 <= getattr(self, f.name) <= 1:
                raise bad(f.name, "must be between 0 and 1")
        if self.batch_size < 1:
            raise bad("batch_size", "must be positive")
        return self

    def replace(self, **overrides) -> CascadeSettings:
        values = asdict(self) | {k: v for k, v in overrides.items() if v is not None}
        return CascadeSettings(**values).validate()


@dataclass(frozen=True)
class Detections:
    """Faces found in one image: square boxes ``x1 y1 x2 y2`` in its pixels, and the 48-net's face probability."""

    boxes: np.ndarray
    scores: np.ndarray


class Cascade(nn.Module):
    """The six nets and the settings that drive them."""

    def __init__(self, nets: dict[str, nn.Module] | None = None, settings: CascadeSettings | None = None):
        super().__init__()
        self.nets = nn.ModuleDict(nets or {name: cls() for name, cls in NETS.items()})
        self.settings = (settings or CascadeSettings()).validate()
        self._folded: dict[str, tuple[tuple, nn.Module]] = {}
        self.eval()

    def _inference_net(self, name: str) -> nn.Module:
        """The net with batch norm folded in, rebuilt whenever its weights change (training updates them in
        place, which bumps each tensor's version counter)."""
        net = self.nets[name]
        if net.training:
            return net
        key = (id(net), *(t._version for t in (*net.parameters(), *net.buffers())))
        if name not in self._folded or self._folded[name][0] != key:
            self._folded[name] = (key, fold_batch_norm(net))
        return self._folded[name][1]

    @torch.inference_mode()
    def _probabilities(self, name: str, windows: torch.Tensor) -> np.ndarray:
        net = self._inference_net(name)
        batch = self.settings.batch_size
        # Channels-last convolutions and pooling run about twice as fast on a CPU (the 24/48 stages' hot loop).
        windows = windows.to(model_device(net)).contiguous(memory_format=torch.channels_last)
        out = [torch.softmax(net(windows[i:i + batch]), dim=1) for i in range(0, len(windows), batch)]
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, 2 if name.startswith("detect") else 45))

    def face_probability(self, size: int, windows: torch.Tensor) -> np.ndarray:
        """The ``size``-net's face probability of each window (averaged with its mirror image's if ``mirror``)."""
        if not self.settings.mirror:
            return self._probabilities(f"detect{size}", windows)[:, 1]
        both = self._probabilities(f"detect{size}", torch.cat([windows, windows.flip(-1)]))[:, 1]
        return (both[: len(windows)] + both[len(windows):]) / 2

    @torch.inference_mode()
    def stage_12(self, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every pyramid level through the fully-convolutional 12-net, calibrated, NMS-ed: (boxes, scores)."""
        s = self.settings
        boxes, scores, patches = [], [], []
        for scale in pyramid_scales(*grey.shape[:2], s.min_face, s.scale_factor):
            level = torch.from_numpy(resize(grey, scale)).float()[None, None]
            net12 = self.nets["detect12"]
            face = net12.face_probability_map(level.to(model_device(net12)))[0].cpu().numpy()
            rows, cols = np.nonzero(face > s.threshold_12)
            boxes.append(grid_windows(rows, cols, scale, 12, STRIDE_12))
            scores.append(face[rows, cols])
            patches.append(level_patches(level, rows, cols, 12, STRIDE_12))
        if not boxes or not sum(len(b) for b in boxes):
            return np.zeros((0, 4)), np.zeros(0)
        boxes, scores = np.concatenate(boxes), np.concatenate(scores)
        boxes = calibrate(boxes, self._probabilities("calibrate12", torch.cat(patches)))
        keep = nms(boxes, scores, s.nms_12)
        return boxes[keep], scores[keep]

    @torch.inference_mode()
    def refine(self, size: int, pyramids: list[list[torch.Tensor]], candidates: list[tuple[np.ndarray, np.ndarray]],
               threshold: float, nms_iou: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """One 24- or 48-stage over the candidates of several images at once."""
        owner = np.concatenate([np.full(len(b), i) for i, (b, _) in enumerate(candidates)]).astype(int)
        boxes = np.concatenate([b for b, _ in candidates]).reshape(-1, 4)
        windows = torch.cat([crop_windows(p, b, size) for p, (b, _) in zip(pyramids, candidates)])
        face = self.face_probability(size, windows)
        passed = face > threshold
        boxes = calibrate(boxes[passed], self._probabilities(f"calibrate{size}", windows[torch.from_numpy(passed)]))
        face, owner = face[passed], owner[passed]
        out = []
        for i in range(len(candidates)):
            mine = np.flatnonzero(owner == i)
            keep = mine[nms(boxes[mine], face[mine], nms_iou)]
            out.append((boxes[keep], face[keep]))
        return out

    def detect_many(self, images: Iterable[np.ndarray], chunk: int = 8, stages: int = 3) -> Iterator[Detections]:
        """Detections for each image, in order; ``chunk`` images share each network batch.

        ``stages`` < 3 stops early (used to mine hard negatives for the next stage).
        """
        s = self.settings
        iterator = iter(images)
        while batch := list(islice(iterator, chunk)):
            greys = [to_grey(image) for image in batch]
            found = [self.stage_12(grey) for grey in greys]
            if stages >= 2:
                pyramids = [octaves(grey) for grey in greys]
                found = self.refine(24, pyramids, found, s.threshold_24, s.nms_24)
                if stages >= 3:
                    found = self.refine(48, pyramids, found, s.threshold_48, s.nms_48)
            yield from (Detections(b, sc) for b, sc in found)

    def detect(self, image: np.ndarray) -> Detections:
        return next(self.detect_many([image], chunk=1))
