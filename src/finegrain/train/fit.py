"""``fit``: one task trained in one run folder by the one Trainer, growing on plateaus."""

from __future__ import annotations

import sys
from pathlib import Path

from finegrain.config import TrainConfig
from finegrain.train.growth import GrowOnPlateau
from finegrain.train.trainer import CHECKPOINT, EpochHook, OptimConfig, Trainer


def say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def fit(task, cfg: TrainConfig, run_dir: Path, epochs: int, grow: str, resume: bool, tensorboard: bool,
        deadline: float | None = None, epoch_hooks: list[EpochHook] | None = None,
        backbone_lr_scale: float = 1.0) -> list[dict]:
    """Train ``task`` for ``epochs`` in ``run_dir`` (resuming from its checkpoint), growing on plateaus,
    stopping early on the validation metric (``--patience``) or at ``deadline`` (``time.time()``)."""
    optim = OptimConfig(
        epochs=epochs, lr=cfg.lr, loss_lr=cfg.loss_lr, weight_decay=cfg.weight_decay, optimizer=cfg.optimizer,
        warmup_epochs=cfg.warmup_epochs, grad_clip=cfg.grad_clip, seed=cfg.seed,
        plateau_patience=cfg.plateau_patience, progress=cfg.progress, patience=cfg.patience,
        backbone_lr_scale=backbone_lr_scale, deadline=deadline, device=cfg.device,
        precision=cfg.precision,
    )
    hooks = [GrowOnPlateau(grow, noise=cfg.grow_noise, seed=cfg.seed)] if grow else []
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(task, optim, run_dir, plateau_hooks=hooks, tensorboard=tensorboard, epoch_hooks=epoch_hooks)
    return trainer.fit(resume=resume and (run_dir / CHECKPOINT).exists())
