"""The best epoch so far on the validation metric: its weights (kept to restore at the end) and how long
training has gone without beating it (for early stopping)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class BestEpoch:
    """``update`` after each epoch with the monitored value; ``stale`` counts epochs since the best."""

    mode: str = "max"  # "max" for metrics, "min" for losses
    min_delta: float = 1e-4
    epoch: int | None = None
    value: float | None = None
    stale: int = 0
    architecture: dict | None = None
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def update(self, epoch: int, value: float, model: nn.Module, tolerance: float = 0.0) -> bool:
        """Record the epoch if it is the best so far or ties it (keeping a copy of the weights); True if so.

        ``tolerance``: the validation metric's standard error, where the task knows it. An epoch within it of
        the best is a tie, and ties keep the later weights: the one-standard-error rule (Breiman et al. 1984),
        here preferring the longer-trained network. Validation on a few hundred images cannot rank epochs that
        close, and it does not see what more training still gives: trained on SCUT's Caucasian faces, a
        scorer's Pearson on the Asian ones rose from a mean of 0.26 (epochs 4-15) to 0.39 (epochs 25-35) while
        its validation Pearson stayed between 0.76 and 0.81, about one standard error (bench/transfer_curve.py).
        """
        sign = 1 if self.mode == "max" else -1
        # A tie counts as the best too, with the later (longer-trained) weights: a saturated validation metric
        # (every held-out image already right) cannot tell epochs apart, so it should not stop training.
        if self.value is not None and sign * (value - self.value) < -max(self.min_delta, tolerance):
            self.stale += 1
            return False
        # The value kept is the better one, so a run of near-ties cannot drift the bar down by min_delta each time.
        better = value if self.value is None else (max if sign > 0 else min)(value, self.value)
        self.epoch, self.value, self.stale = epoch, better, 0
        # The architecture too: the network may grow (Net2Net) after its best epoch.
        self.architecture = model.config()
        self.weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return True

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """What a checkpoint stores: (JSON-able fields, tensors under ``best.``)."""
        fields = {"mode": self.mode, "epoch": self.epoch, "value": self.value, "stale": self.stale,
                  "architecture": self.architecture}
        return fields, {f"best.{k}": v for k, v in self.weights.items()}

    @classmethod
    def from_state(cls, fields: dict[str, Any], weights: dict[str, torch.Tensor]) -> BestEpoch:
        return cls(mode=fields["mode"], epoch=fields["epoch"], value=fields["value"], stale=fields["stale"],
                   architecture=fields["architecture"], weights=weights)
