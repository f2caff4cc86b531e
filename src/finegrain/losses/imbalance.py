"""Losses for long-tailed classification: the maths as pure functions on logits, thin modules around them.

- class-balanced weights by the effective number of samples (Cui et al., CVPR 2019):
  w_c ∝ (1 − β) / (1 − β^{n_c}), scaled to sum to the number of classes;
- LDAM (Cao et al., NeurIPS 2019): the true class's logit lowered by a margin m_c ∝ n_c^{-1/4} (the largest
  ``max_margin``) before a scaled softmax, with deferred re-weighting (DRW): class-balanced weights only from
  the ``defer_epoch``-th epoch on;
- balanced softmax (Ren et al., NeurIPS 2020): cross-entropy of ``logits + log n_c``;
- τ-normalisation (Kang et al., ICLR 2020): each class's classifier weight vector divided by its norm to the τ.

``counts`` are the training images per class (every class at least one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finegrain.errors import ConfigError


def _counts(counts: Tensor | list[int]) -> Tensor:
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.ndim != 1 or len(counts) == 0 or bool((counts < 1).any()):
        raise ConfigError("class counts must be a non-empty list of positive numbers (images per class)")
    return counts


def class_balanced_weights(counts: Tensor | list[int], beta: float = 0.9999) -> Tensor:
    """Per-class weights (1 − β) / (1 − β^{n_c}), scaled so they sum to the number of classes."""
    if not 0 <= beta < 1:
        raise ConfigError(f"beta must be in [0, 1), got {beta}")
    n = _counts(counts)
    weights = (1 - beta) / (1 - torch.pow(beta, n)) if beta > 0 else torch.ones_like(n)
    return (weights * len(n) / weights.sum()).float()


def class_balanced_cross_entropy(logits: Tensor, targets: Tensor, counts: Tensor | list[int],
                                 beta: float = 0.9999) -> Tensor:
    """Mean over the batch of w_{y_i} · CE_i (Cui et al.'s class-balanced softmax cross-entropy)."""
    weights = class_balanced_weights(counts, beta).to(logits.device)
    return (weights[targets] * F.cross_entropy(logits, targets, reduction="none")).mean()


def ldam_margins(counts: Tensor | list[int], max_margin: float = 0.5) -> Tensor:
    """m_c = C / n_c^{1/4}, with C such that the rarest class gets ``max_margin``."""
    inverse = _counts(counts).pow(-0.25)
    return (inverse * (max_margin / inverse.max())).float()


def ldam_loss(logits: Tensor, targets: Tensor, margins: Tensor, scale: float = 30.0,
              weights: Tensor | None = None) -> Tensor:
    """Cross-entropy of ``scale ·`` (logits with the true class's lowered by its margin); ``weights``: DRW's.

    The logits are expected to be cosines (a cosine classifier), as in the paper, hence the scale."""
    adjusted = logits - F.one_hot(targets, logits.shape[1]) * margins.to(logits)[targets][:, None]
    return F.cross_entropy(scale * adjusted, targets, weight=None if weights is None else weights.to(logits))


def balanced_softmax_loss(logits: Tensor, targets: Tensor, counts: Tensor | list[int]) -> Tensor:
    """Cross-entropy of ``logits + log n_c``: the softmax of the training prior, so the plain logits
    estimate the balanced one."""
    return F.cross_entropy(logits + _counts(counts).log().to(logits), targets)


def tau_normalize(weight: Tensor, tau: float = 1.0) -> Tensor:
    """Classifier weights (classes × features) with each row divided by its L2 norm to the power τ."""
    if tau < 0:
        raise ConfigError(f"tau must be 0 or more, got {tau}")
    return weight / weight.norm(dim=1, keepdim=True).clamp_min(1e-12).pow(tau)


class LDAMLoss(nn.Module):
    """LDAM with deferred re-weighting: call ``set_epoch`` each epoch; from ``defer_epoch`` on the classes are
    weighted by their effective number (``beta``)."""

    def __init__(self, counts: list[int], max_margin: float = 0.5, scale: float = 30.0, defer_epoch: int | None = None,
                 beta: float = 0.9999):
        super().__init__()
        self.register_buffer("margins", ldam_margins(counts, max_margin))
        self.register_buffer("drw_weights", class_balanced_weights(counts, beta))
        self.scale, self.defer_epoch, self.epoch = scale, defer_epoch, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        reweight = self.defer_epoch is not None and self.epoch >= self.defer_epoch
        return ldam_loss(logits, targets, self.margins, self.scale, self.drw_weights if reweight else None)


class BalancedSoftmaxLoss(nn.Module):
    def __init__(self, counts: list[int]):
        super().__init__()
        self.register_buffer("log_prior", _counts(counts).log().float())

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits + self.log_prior, targets)
