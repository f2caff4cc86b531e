"""Test-time augmentation: encode several views of each image and average them.

Views are cheap tensor ops on the already-normalised batch, so they cost forward passes only:
``flip`` (mirror), ``crops`` (four corners and the centre at 7/8 of the side, resized back) and
``scales`` (zoom in to 7/8 and out to 8/7 with reflected borders). With ``flip`` every other view
is mirrored too. A flip is wrong for classes a mirror changes (text, left/right flukes).
Embeddings are averaged and re-normalised to unit length; scores are averaged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from finegrain.errors import ConfigError

TTA_CHOICES = ("flip", "crops", "scales")
_CROP = 7 / 8


def parse_tta(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"flip,crops"`` → ``("flip", "crops")``; ``None``, ``""`` and ``"none"`` → no augmentation."""
    if spec is None:
        return ()
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if items == ["none"]:
        return ()
    bad = [s for s in items if s not in TTA_CHOICES]
    if bad:
        raise ConfigError(f"--tta takes a comma list of {', '.join(TTA_CHOICES)} (or none), not {','.join(bad)!r}")
    return tuple(dict.fromkeys(items))


def _resize(x: Tensor, size: int) -> Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _crop(x: Tensor, top: int, left: int, side: int) -> Tensor:
    return _resize(x[..., top : top + side, left : left + side], x.shape[-1])


def _zoom_out(x: Tensor) -> Tensor:
    size = x.shape[-1]
    pad = round(size * (1 / _CROP - 1) / 2)
    return _resize(F.pad(x, (pad, pad, pad, pad), mode="reflect"), size)


def views(x: Tensor, tta: Sequence[str]) -> list[Callable[[], Tensor]]:
    """Lazy views of a normalised N×3×S×S batch (the first is the batch itself)."""
    size = x.shape[-1]
    side = round(size * _CROP)
    far, mid = size - side, (size - side) // 2
    base: list[Callable[[], Tensor]] = [lambda: x]
    if "crops" in tta:
        base += [lambda t=t, left=left: _crop(x, t, left, side) for t, left in ((0, 0), (0, far), (far, 0), (far, far))]
        base.append(lambda: _crop(x, mid, mid, side))
    if "scales" in tta:  # zoom in is the centre crop, already there with "crops"
        base += ([] if "crops" in tta else [lambda: _crop(x, mid, mid, side)]) + [lambda: _zoom_out(x)]
    if "flip" in tta:
        base += [lambda v=v: torch.flip(v(), dims=[3]) for v in list(base)]
    return base


def forward_with_tta(model: Callable[[Tensor], Tensor], x: Tensor, tta: Sequence[str]) -> Tensor:
    """The model's output averaged over the views: unit embeddings (N×E) re-normalised, scores (N) averaged."""
    if not tta:
        return model(x)
    all_views = views(x, tta)
    total = sum(model(view()) for view in all_views)
    return F.normalize(total, dim=1) if total.dim() == 2 else total / len(all_views)
