"""``train(config)``: from a data source to a run folder with a trained, self-describing model."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from finegrain.config import TrainConfig
from finegrain.data import prepare, read_source, split_records
from finegrain.errors import ConfigError
from finegrain.models import create_model, save_model
from finegrain.train.embed_task import EmbedTask
from finegrain.train.trainer import CHECKPOINT, OptimConfig, Trainer
from finegrain.utils import seed_everything, set_threads

CONFIG_FILE = "config.yaml"


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict]

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def train(cfg: TrainConfig, resume: bool = False, quiet: bool = False, tensorboard: bool = True) -> TrainResult:
    run_dir = Path(cfg.out)
    if resume:
        saved = run_dir / CONFIG_FILE
        if not (run_dir / CHECKPOINT).exists() or not saved.exists():
            raise ConfigError(f"--resume: {run_dir} has no checkpoint to resume from")
        # A resumed run must replay the original run exactly: its saved config wins over new flags.
        cfg = TrainConfig.load(saved)
    elif (run_dir / CHECKPOINT).exists():
        raise ConfigError(f"--out {run_dir} already holds a run; pass --resume to continue it or choose another --out")
    cfg.validate()
    set_threads(cfg.threads)
    seed_everything(cfg.seed)

    records = read_source(cfg.data, cfg.root)
    splits = split_records(records, by=cfg.split_by, val=cfg.val, seed=cfg.seed)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None
    train_data = prepare(splits["train"], cfg.image_size, cache_dir=cache, task="embed", skip_bad=cfg.skip_bad,
                         progress=cfg.progress)
    val_data = None
    if splits.get("val"):
        val_data = prepare(splits["val"], cfg.image_size, cache_dir=cache, task="embed", skip_bad=cfg.skip_bad,
                           progress=cfg.progress)
    for note in train_data.notes + (val_data.notes if val_data else []):
        _say(f"note: {note}", quiet)
    _say(f"training on {len(train_data.records)} images of {len(train_data.classes)} classes"
         + (f", validating on {len(val_data.records)} images of {len(val_data.classes)} classes" if val_data else ""),
         quiet)
    if cfg.p > len(train_data.classes):
        raise ConfigError(f"--p {cfg.p} exceeds the {len(train_data.classes)} training classes; lower --p")

    model = create_model(cfg.backbone, embedding_size=cfg.embedding_size, pooling=cfg.pooling,
                         width_multiplier=cfg.width)
    task = EmbedTask(cfg, model, train_data, val_data)
    optim = OptimConfig(
        epochs=cfg.epochs, lr=cfg.lr, loss_lr=cfg.loss_lr, weight_decay=cfg.weight_decay, optimizer=cfg.optimizer,
        warmup_epochs=cfg.warmup_epochs, grad_clip=cfg.grad_clip, seed=cfg.seed,
        plateau_patience=cfg.plateau_patience, progress=cfg.progress,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / CONFIG_FILE)
    trainer = Trainer(task, optim, run_dir, tensorboard=tensorboard)
    history = trainer.fit(resume=resume)
    save_model(task.model, run_dir / "model.pt", extra=task.model_extra())
    return TrainResult(run_dir, history)
