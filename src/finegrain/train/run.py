"""``train(config)``: from a data source to a run folder with a trained, self-describing model."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from finegrain.config import TrainConfig
from finegrain.data import PreparedData, prepare, read_source, split_records
from finegrain.errors import ConfigError
from finegrain.models import create_model, save_model
from finegrain.train.embed_task import EmbedTask
from finegrain.train.growth import GrowOnPlateau
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


def say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def train(cfg: TrainConfig, resume: bool = False, quiet: bool = False, tensorboard: bool = True) -> TrainResult:
    run_dir = Path(cfg.out)
    if resume:
        saved = run_dir / CONFIG_FILE
        if not saved.exists():
            raise ConfigError(f"--resume: {run_dir} has no run to resume")
        # A resumed run must replay the original run exactly: its saved config wins over new flags.
        cfg = TrainConfig.load(saved)
    elif (run_dir / CONFIG_FILE).exists() or (run_dir / CHECKPOINT).exists():
        raise ConfigError(f"--out {run_dir} already holds a run; pass --resume to continue it or choose another --out")
    cfg.validate()
    set_threads(cfg.threads)
    seed_everything(cfg.seed)
    train_data, val_data = prepare_splits(cfg, quiet)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / CONFIG_FILE)
    if cfg.task == "score":
        from finegrain.train.score_recipe import train_scorer

        return TrainResult(run_dir, train_scorer(cfg, train_data, val_data, resume, quiet, tensorboard))

    if cfg.p > len(train_data.classes):
        raise ConfigError(f"--p {cfg.p} exceeds the {len(train_data.classes)} training classes; lower --p")
    task = EmbedTask(cfg, build_embedding_model(cfg), train_data, val_data)
    history = fit(task, cfg, run_dir, cfg.epochs, cfg.grow, resume, tensorboard)
    save_model(task.model, run_dir / "model.pt", extra=task.model_extra())
    return TrainResult(run_dir, history)


def prepare_splits(cfg: TrainConfig, quiet: bool) -> tuple[PreparedData, PreparedData | None]:
    """Read, split and decode the data once; report notes (dropped files, one-image classes)."""
    records = read_source(cfg.data, cfg.root)
    splits = split_records(records, by=cfg.split_by, val=cfg.val, seed=cfg.seed)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None

    def load(part: str) -> PreparedData:
        return prepare(splits[part], cfg.image_size, cache_dir=cache, task=cfg.task, skip_bad=cfg.skip_bad,
                       progress=cfg.progress)

    train_data = load("train")
    val_data = load("val") if splits.get("val") else None
    for note in train_data.notes + (val_data.notes if val_data else []):
        say(f"note: {note}", quiet)
    what = f" of {len(train_data.classes)} classes" if cfg.task == "embed" else " with scores"
    say(f"training on {len(train_data.records)} images{what}"
        + (f", validating on {len(val_data.records)} images" if val_data else ""), quiet)
    return train_data, val_data


def backbone_kwargs(cfg: TrainConfig) -> dict:
    """Backbone options from the config; unset ones are left to the backbone's own defaults."""
    kw: dict = {"width_multiplier": cfg.width}
    if cfg.activation is not None:
        kw["activation"] = cfg.activation
    if cfg.batch_norm is not None:
        kw["batch_norm"] = cfg.batch_norm
    if cfg.backbone == "lbp":  # its histogram grid is laid out for the training image size
        kw["image_size"] = cfg.image_size
    if cfg.stem_stride is not None:
        kw["stem_stride"] = cfg.stem_stride
    if cfg.lbp_radius is not None:
        kw["radius"] = cfg.lbp_radius
    if cfg.lbp_cell is not None:
        kw["cell"] = cfg.lbp_cell
    return kw


def build_embedding_model(cfg: TrainConfig):
    return create_model(cfg.backbone, embedding_size=cfg.embedding_size, pooling=cfg.pooling, **backbone_kwargs(cfg))


def fit(task, cfg: TrainConfig, run_dir: Path, epochs: int, grow: str, resume: bool, tensorboard: bool) -> list[dict]:
    """Train ``task`` for ``epochs`` in ``run_dir`` (resuming from its checkpoint), growing on plateaus."""
    optim = OptimConfig(
        epochs=epochs, lr=cfg.lr, loss_lr=cfg.loss_lr, weight_decay=cfg.weight_decay, optimizer=cfg.optimizer,
        warmup_epochs=cfg.warmup_epochs, grad_clip=cfg.grad_clip, seed=cfg.seed,
        plateau_patience=cfg.plateau_patience, progress=cfg.progress,
    )
    hooks = [GrowOnPlateau(grow, noise=cfg.grow_noise, seed=cfg.seed)] if grow else []
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(task, optim, run_dir, plateau_hooks=hooks, tensorboard=tensorboard)
    return trainer.fit(resume=resume and (run_dir / CHECKPOINT).exists())
