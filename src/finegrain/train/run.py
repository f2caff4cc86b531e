"""``train(config)``: from a data source to a run folder with a trained, self-describing model."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from finegrain.config import TrainConfig, flag
from finegrain.data import PreparedData, prepare, read_source, split_records
from finegrain.encoders import MODEL_FILE
from finegrain.errors import ConfigError
from finegrain.models import save_model
from finegrain.train.build import build_embedding_model
from finegrain.train.embed_task import EmbedTask
from finegrain.train.fit import fit, say
from finegrain.train.score_recipe import train_scorer
from finegrain.train.trainer import CHECKPOINT
from finegrain.utils import seed_everything, set_threads

CONFIG_FILE = "config.yaml"
# Settings that change how a run is executed or shown, never what it learns: free to differ on --resume.
_RUNTIME_SETTINGS = frozenset({"out", "progress", "threads", "workers", "cache_dir"})


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict]

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def train(cfg: TrainConfig, resume: bool = False, quiet: bool = False, tensorboard: bool = True,
          given: Iterable[str] | None = None, override: bool = False) -> TrainResult:
    """Train ``cfg`` into ``cfg.out``.

    ``resume`` continues the run there. A resumed run replays the saved configuration; settings that
    differ from it (those in ``given``, the flags typed; by default every one not at its default) are an
    error naming them, unless ``override``: then the new values are used and saved.
    """
    run_dir = Path(cfg.out)
    if resume:
        saved = run_dir / CONFIG_FILE
        if not saved.exists():
            raise ConfigError(f"--resume: {run_dir} has no run to resume")
        cfg = _resumed_config(TrainConfig.load(saved), cfg, given, override)
    elif (run_dir / CONFIG_FILE).exists() or (run_dir / CHECKPOINT).exists():
        raise ConfigError(f"--out {run_dir} already holds a run; pass --resume to continue it or choose another --out")
    cfg.validate()
    set_threads(cfg.threads)
    seed_everything(cfg.seed)
    train_data, val_data = prepare_splits(cfg, quiet)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / CONFIG_FILE)
    if cfg.task == "score":
        return TrainResult(run_dir, train_scorer(cfg, train_data, val_data, resume, quiet, tensorboard))

    if cfg.p > len(train_data.classes):
        raise ConfigError(f"--p {cfg.p} exceeds the {len(train_data.classes)} training classes; lower --p")
    task = EmbedTask(cfg, build_embedding_model(cfg), train_data, val_data)
    history = fit(task, cfg, run_dir, cfg.epochs, cfg.grow, resume, tensorboard)
    save_model(task.model, run_dir / MODEL_FILE, **task.model_manifest())
    return TrainResult(run_dir, history)


def _resumed_config(saved: TrainConfig, new: TrainConfig, given: Iterable[str] | None, override: bool) -> TrainConfig:
    defaults = TrainConfig(data=new.data)
    names = set(given) if given is not None else {
        f.name for f in dataclasses.fields(TrainConfig) if getattr(new, f.name) != getattr(defaults, f.name)}
    differ = sorted(n for n in names - _RUNTIME_SETTINGS if not _same(n, getattr(saved, n), getattr(new, n)))
    if differ and not override:
        shown = ", ".join(f"{flag(n)} {getattr(new, n)!r} (the run has {getattr(saved, n)!r})" for n in differ)
        raise ConfigError(f"--resume continues the run with its saved settings, but these differ: {shown}; "
                          "drop them, or pass --override to continue with the new values")
    changes = {n: getattr(new, n) for n in names & _RUNTIME_SETTINGS} | (
        {n: getattr(new, n) for n in differ} if override else {})
    return dataclasses.replace(saved, **changes)


def _same(name: str, saved: object, new: object) -> bool:
    if name in ("data", "root") and saved is not None and new is not None:
        return Path(str(saved)).resolve() == Path(str(new)).resolve()
    return saved == new


def prepare_splits(cfg: TrainConfig, quiet: bool) -> tuple[PreparedData, PreparedData | None]:
    """Read, split and decode the data once; report notes (dropped files, one-image classes)."""
    # An embedding's list file holds labels even when they are numbers (class ids); a scorer's holds scores.
    records = read_source(cfg.data, cfg.root, kind="label" if cfg.task == "embed" else "score")
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
