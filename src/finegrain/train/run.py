"""``train(config)``: from a data source to a run folder with a trained, self-describing model."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from finegrain.config import TrainConfig, flag
from finegrain.devices import resolve_device
from finegrain.errors import ConfigError
from finegrain.train import distributed
from finegrain.train.launch import join_world, spawn, torchrun_world
from finegrain.train.search import train_within_budget
from finegrain.train.single import CONFIG_FILE, prepare_splits, train_run
from finegrain.train.trainer import CHECKPOINT

__all__ = ["CONFIG_FILE", "TrainResult", "prepare_splits", "train", "train_run"]
# Settings that change how a run is executed or shown, never what it learns: free to differ on --resume.
_RUNTIME_SETTINGS = frozenset({"out", "progress", "threads", "workers", "cache_dir", "device"})


@dataclass
class TrainResult:
    run_dir: Path
    history: list[dict]
    search: dict | None = None  # --time-budget: the trials and the chosen settings

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    @property
    def best(self) -> dict:
        """The epoch the model keeps: the best on validation, else the last."""
        marked = [row for row in self.history if row.get("best")]
        return marked[-1] if marked else self.final

    def summary(self) -> dict:
        """What ``finegrain train`` prints."""
        out = {"run": str(self.run_dir), "epochs": len(self.history),
               **{k: v for k, v in self.best.items() if k not in ("event", "best")}}
        if self.history and self.history[-1].get("event"):
            out["last_event"] = self.history[-1]["event"]
        if self.search is not None:
            out["search"] = self.search
        return out


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
    resolve_device(cfg.device)  # a GPU this machine lacks is an error now, before any data is read or written
    if not distributed.current().active and (cfg.processes > 1 or torchrun_world() > 1):
        # Each process comes back here inside its process group and trains below.
        if torchrun_world() > 1:
            return TrainResult(run_dir, join_world(cfg, resume, quiet, tensorboard, given, override, train))
        return TrainResult(run_dir, spawn(cfg, resume, quiet, tensorboard, given, override, train))
    if cfg.time_budget is not None:
        history, search = train_within_budget(cfg, resume=resume, quiet=quiet, tensorboard=tensorboard)
        return TrainResult(run_dir, history, search)
    return TrainResult(run_dir, train_run(cfg, resume=resume, quiet=quiet, tensorboard=tensorboard))


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


