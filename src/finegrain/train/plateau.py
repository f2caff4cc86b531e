"""Plateau detection: the hook where a later stage (Net2Net growth) acts when training stalls."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PlateauDetector:
    """Fires once ``patience`` epochs pass without the monitored value improving by ``min_delta``.

    ``mode`` is "max" for metrics (MAP@R) and "min" for losses. After firing, the count restarts,
    so a stall that survives one intervention can fire again later.
    """

    patience: int = 3
    mode: str = "max"
    min_delta: float = 1e-4
    best: float | None = None
    stale: int = 0

    def update(self, value: float) -> bool:
        better = self.best is None or (
            value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta
        )
        if better:
            self.best, self.stale = value, 0
            return False
        self.stale += 1
        if self.patience > 0 and self.stale >= self.patience:
            self.stale = 0
            return True
        return False

    def state_dict(self) -> dict:
        return {"best": self.best, "stale": self.stale}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.stale = state["best"], state["stale"]
