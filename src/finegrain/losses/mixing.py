"""Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) of a batch, and the loss of a mixed batch.

Each mixes a batch with a permutation of itself by a fraction λ ~ Beta(α, α); the loss is
``λ · L(logits, y) + (1 − λ) · L(logits, y[perm])`` for any per-batch loss ``L``, so every long-tail
loss mixes the same way. Random draws come from torch's generator, which the trainer seeds per epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Mixed:
    images: Tensor
    targets: Tensor
    partner: Tensor  # the targets of the images mixed in
    lam: float  # the share of the original images (for cutmix: of their pixels)

    def loss(self, criterion: Callable[[Tensor, Tensor], Tensor], logits: Tensor) -> Tensor:
        return self.lam * criterion(logits, self.targets) + (1 - self.lam) * criterion(logits, self.partner)


def _beta(alpha: float) -> float:
    return float(torch.distributions.Beta(alpha, alpha).sample())


def mixup(images: Tensor, targets: Tensor, alpha: float) -> Mixed:
    lam = _beta(alpha)
    perm = torch.randperm(len(images))
    return Mixed(lam * images + (1 - lam) * images[perm], targets, targets[perm], lam)


def cutmix(images: Tensor, targets: Tensor, alpha: float) -> Mixed:
    """A box of area ≈ (1 − λ) of each image replaced by the partner's; λ is re-computed from the clipped box."""
    lam = _beta(alpha)
    perm = torch.randperm(len(images))
    h, w = images.shape[-2:]
    cut_h, cut_w = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
    cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
    mixed = images.clone()
    mixed[..., y0:y1, x0:x1] = images[perm][..., y0:y1, x0:x1]
    return Mixed(mixed, targets, targets[perm], 1 - (y1 - y0) * (x1 - x0) / (h * w))


def mix_batch(images: Tensor, targets: Tensor, mixup_alpha: float, cutmix_alpha: float) -> Mixed | None:
    """One of the enabled mixes (both enabled: either, with even odds), or None when both are off."""
    choices = [(mixup, mixup_alpha), (cutmix, cutmix_alpha)]
    enabled = [(f, a) for f, a in choices if a > 0]
    if not enabled:
        return None
    f, alpha = enabled[int(torch.randint(len(enabled), ()))] if len(enabled) > 1 else enabled[0]
    return f(images, targets, alpha)
