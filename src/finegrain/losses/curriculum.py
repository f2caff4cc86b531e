"""Margin curriculum: start with an easy margin and raise it as the embedding improves."""

from __future__ import annotations

from dataclasses import dataclass

from finegrain.losses.metric import MetricObjective


@dataclass(frozen=True)
class MarginCurriculum:
    """Linear margin schedule from ``start`` (first epoch) to ``end`` (last epoch)."""

    start: float
    end: float

    def margin_at(self, epoch: int, epochs: int) -> float:
        if epochs <= 1:
            return self.end
        t = min(max(epoch / (epochs - 1), 0.0), 1.0)
        return self.start + (self.end - self.start) * t

    def apply(self, objective: MetricObjective, epoch: int, epochs: int) -> float:
        objective.margin = self.margin_at(epoch, epochs)
        return objective.margin
