"""Net2Net growth as a plateau hook: each time training stalls, apply the next step of a schedule."""

from __future__ import annotations

from collections.abc import Sequence

from finegrain.models.net2net import apply_growth, parse_growth

EVENT_PREFIX = "net2net"


class GrowOnPlateau:
    """``Trainer(plateau_hooks=[GrowOnPlateau("widen:1.5,deepen")])``.

    The position in the schedule is read back from the run's history (events logged so far), so a resumed
    run continues where it left off without extra state in the checkpoint.
    """

    def __init__(self, steps: str | Sequence[tuple[str, float | None]], noise: float = 0.0, seed: int = 0):
        self.steps = parse_growth(steps) if isinstance(steps, str) else list(steps)
        self.noise, self.seed = noise, seed

    def __call__(self, trainer, epoch: int) -> str | None:
        done = sum(str(row.get("event", "")).count(EVENT_PREFIX) for row in trainer.history)
        if done >= len(self.steps):
            return None
        event = apply_growth(trainer.task.model, self.steps[done], noise=self.noise, seed=self.seed + done)
        # The new parameters need an optimiser; the schedule carries on from the next epoch.
        trainer.rebuild_optimizer(completed_epochs=epoch + 1)
        return event
