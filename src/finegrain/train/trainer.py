"""One trainer for every task: optimiser, schedule, checkpoints, resume, logs, plateau and epoch hooks,
early stopping on the validation metric with the best epoch's weights restored at the end, deadlines.

A task supplies the model, the loss of a batch, a loader per epoch and validation; the trainer owns
everything else. Each epoch reseeds every random source from (seed, epoch), so a run killed after
epoch e and resumed from its checkpoint replays epoch e+1 exactly as an uninterrupted run would.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader

from finegrain import devices
from finegrain.artifact import pack_state, read_artifact, unpack_state, write_artifact
from finegrain.data.prefetch import Prefetcher
from finegrain.errors import FinegrainError
from finegrain.train import distributed
from finegrain.train.best import BestEpoch
from finegrain.train.metrics_log import MetricsLog
from finegrain.train.plateau import PlateauDetector
from finegrain.train.schedule import build_scheduler
from finegrain.utils import progress_bar, seed_everything

CHECKPOINT = "checkpoint.safetensors"
CHECK_EVERY = 50  # on a GPU, steps between checks that the loss is finite
TIME_UP = "time budget reached"


class TrainingTask(Protocol):
    model: nn.Module
    monitor: tuple[str, str]  # (metric key, "max" | "min")

    def steps_per_epoch(self) -> int: ...
    def make_loader(self, epoch: int, seed: int) -> Iterable[Any]: ...
    def loss(self, batch: Any) -> torch.Tensor: ...
    def loss_parameters(self) -> list[nn.Parameter]: ...
    def on_epoch_start(self, epoch: int, epochs: int) -> dict[str, float]: ...
    def validate(self) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def restore_model(self, model_config: dict, state: dict) -> None: ...


@dataclass
class OptimConfig:
    epochs: int
    lr: float = 1e-3
    loss_lr: float | None = None
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    warmup_epochs: float = 1.0
    grad_clip: float = 5.0
    seed: int = 0
    plateau_patience: int = 3
    progress: bool = True
    patience: int = 0  # early stopping: epochs without a better validation value before stopping (0: off)
    backbone_lr_scale: float = 1.0  # the backbone's learning rate, relative to the head's (a started-from model)
    deadline: float | None = None  # time.time() after which no further epoch starts
    device: str = "cpu"  # --device; "auto" is resolved when the trainer starts
    precision: str = "auto"  # --precision: "auto" (mixed precision where the device computes it) or "float32"


# A plateau hook may change the model (grow it); it returns a description of what it did, or None.
PlateauHook = Callable[["Trainer", int], "str | None"]
# An epoch hook sees each finished epoch's row (after its checkpoint); it may raise to end training.
EpochHook = Callable[["Trainer", dict], None]


class Trainer:
    def __init__(
        self,
        task: TrainingTask,
        config: OptimConfig,
        run_dir: Path,
        plateau_hooks: list[PlateauHook] | None = None,
        tensorboard: bool = True,
        epoch_hooks: list[EpochHook] | None = None,
    ):
        self.task, self.config, self.run_dir = task, config, Path(run_dir)
        self.plateau_hooks = list(plateau_hooks or [])
        self.epoch_hooks = list(epoch_hooks or [])
        self.tensorboard = tensorboard
        self.world = distributed.current()
        self.device = devices.resolve_device(config.device)
        devices.configure(self.device)
        self.amp = devices.autocast_dtype(self.device, config.precision)
        self.scaler = devices.grad_scaler(self.device, self.amp)
        # With several processes each takes its share of the epoch's batches: an epoch still sees the data once.
        self.steps = max(1, task.steps_per_epoch() // self.world.size)
        self.plateau = PlateauDetector(patience=config.plateau_patience, mode=task.monitor[1])
        self.history: list[dict] = []
        self.start_epoch = 0
        # Only a validation metric picks a best epoch: a training loss always "improves" on a memorising net.
        self.validated = task.monitor[0].startswith("val_")
        self.best = BestEpoch(mode=task.monitor[1])
        self.stopped: str | None = None  # why training ended before its last epoch
        self.rebuild_optimizer()

    def rebuild_optimizer(self, completed_epochs: int | None = None) -> None:
        """(Re)create optimiser and schedule for the current parameters, e.g. after the model grew.

        The schedule is fast-forwarded past ``completed_epochs`` (default: the epoch training starts from);
        a plateau hook that grows the model after epoch ``e`` passes ``e + 1``.
        """
        c = self.config
        self._place_model()
        backbone = {id(p) for p in getattr(self.task.model, "backbone", torch.nn.Module()).parameters()}
        buckets: dict[tuple[bool, bool], list] = {}  # (not decayed, in the backbone) → parameters
        for p in self.task.model.parameters():
            if p.requires_grad:
                # Biases, norms and GeM's p are not weights to shrink.
                buckets.setdefault((p.ndim <= 1, id(p) in backbone), []).append(p)
        groups = [{"params": params, "weight_decay": 0.0 if undecayed else c.weight_decay,
                   "lr": c.lr * (c.backbone_lr_scale if in_backbone else 1.0)}
                  for (undecayed, in_backbone), params in sorted(buckets.items())]
        if self.task.loss_parameters():
            groups.append({"params": self.task.loss_parameters(), "weight_decay": 0.0, "lr": c.loss_lr or c.lr})
        cls = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
        # The fused kernel updates every tensor in one pass instead of a Python loop of small ops.
        self.optimizer = cls(groups, lr=c.lr, fused=self.device.type in ("cpu", "cuda"))
        self._clipped = [p for g in groups for p in g["params"]]
        # Every rank starts from rank 0's weights (equal by seeding already; this makes sure, e.g. after growth).
        distributed.broadcast_tensors([p.data for p in self._clipped], self.world)
        total = c.epochs * self.steps
        done = (self.start_epoch if completed_epochs is None else completed_epochs) * self.steps
        self.scheduler = build_scheduler(self.optimizer, total, int(c.warmup_epochs * self.steps))
        with warnings.catch_warnings():
            # Fast-forwarding before any optimizer.step() is intended here, not the ordering bug torch warns of.
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            for _ in range(done):  # fast-forward the schedule after a rebuild mid-run
                self.scheduler.step()

    def _place_model(self) -> None:
        """The task's modules (model, loss) on the training device. A backbone fed NHWC input gets NHWC weights
        too, so its convolutions need no reordering of them at every call (measured in bench/README)."""
        for module in vars(self.task).values():
            if isinstance(module, nn.Module):
                module.to(self.device)
        if getattr(getattr(self.task.model, "backbone", None), "channels_last", False):
            self.task.model.to(memory_format=torch.channels_last)

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, epoch: int) -> None:
        """Model, optimiser, schedule, task and plateau state in one artifact, written atomically."""
        model = self.task.model
        best, best_tensors = self.best.state()
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()} | best_tensors
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "task": self.task.state_dict(), "plateau": self.plateau.state_dict(), "history": self.history}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        manifest = {"kind": "checkpoint", "epoch": epoch, "architecture": model.config(),
                    "state": pack_state(state, "state", tensors), "best": best, "stopped": self.stopped,
                    "world_size": self.world.size}
        write_artifact(self.run_dir / CHECKPOINT, manifest, tensors)

    def load_checkpoint(self, path: Path | None = None) -> None:
        """Restore everything ``save_checkpoint`` wrote; the file is parsed, never unpickled."""
        ckpt = read_artifact(path or self.run_dir / CHECKPOINT, kinds=("checkpoint",))
        state = unpack_state(ckpt.manifest["state"], ckpt.tensors)
        # The architecture comes from the checkpoint: it may have grown since the run started.
        self.task.restore_model(ckpt.manifest["architecture"], ckpt.sub("model"))
        self.task.load_state_dict(state["task"])
        self.start_epoch = ckpt.manifest["epoch"] + 1
        self.history = state["history"]
        self.plateau.load_state_dict(state["plateau"])
        self.best = BestEpoch.from_state(ckpt.manifest["best"], ckpt.sub("best"))
        self.stopped = ckpt.manifest["stopped"]
        self.rebuild_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        for param, saved in self.optimizer.state.items():  # saved moments come back NCHW; the fused step wants
            for key, value in saved.items():                # them laid out like their (maybe NHWC) parameter
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    saved[key] = torch.empty_like(param).copy_(value)
        # Another number of processes means other steps per epoch: the rebuilt schedule is already fast-forwarded
        # to this epoch, where the saved one would be off.
        if ckpt.manifest.get("world_size", 1) == self.world.size:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> list[dict]:
        """Train to the last epoch, or until early stopping or the deadline; with a validation metric, the
        model ends with the best epoch's weights (the checkpoint keeps the last epoch's, for --resume)."""
        c = self.config
        if resume and (self.run_dir / CHECKPOINT).exists():
            self.load_checkpoint()
        # Rank 0 alone writes the run folder; the other ranks keep the history in memory.
        log = MetricsLog(self.run_dir, self.history, tensorboard=self.tensorboard,
                         best_epoch=lambda: self.best.epoch if self.validated else None) if self.world.main \
            else _MemoryLog(self.history)
        try:
            for epoch in range(self.start_epoch, c.epochs):
                # The deadline is rank 0's call, so that every rank stops after the same epoch.
                if self.stopped or distributed.from_main(self._past_deadline(), self.world):
                    self.stopped = self.stopped or TIME_UP
                    break
                row = self._run_epoch(epoch)
                self._after_epoch(epoch, row)
                log.log(row)
                if c.progress and self.world.main:
                    print(_summary(row, c.epochs), file=sys.stderr, flush=True)
                self.history = log.history
                if self.world.main:
                    self.save_checkpoint(epoch)
                for hook in self.epoch_hooks:
                    hook(self, row)
            if self.stopped == TIME_UP and self.world.main and self.history:
                # The clock ended the run between epochs, after the last checkpoint: say so in it too, so that
                # a search does not take a trial cut after one epoch for a finished one (seen on Omniglot).
                self.save_checkpoint(self.history[-1]["epoch"])
        finally:
            log.close()
        self.restore_best()
        self.task.model.cpu()  # what follows (saving, thresholds) works on CPU tensors, whatever the device
        return self.history

    def _after_epoch(self, epoch: int, row: dict) -> None:
        monitor = self.task.monitor[0]
        # A task that knows its validation metric's standard error logs it beside the metric (``val_pearson_se``).
        tolerance = row.get(f"{monitor}_se", 0.0)
        if self.validated and self.best.update(epoch, row[monitor], self.task.model, tolerance):
            row["best"] = True
        if self.plateau.update(row[monitor]):
            events = [e for hook in self.plateau_hooks if (e := hook(self, epoch))]
            if events:
                row["event"] = "; ".join(events)
                self.best.stale = 0  # a grown network gets its own patience
        if self.validated and 0 < self.config.patience <= self.best.stale:
            self.stopped = f"early stop: no better {self.task.monitor[0]} for {self.best.stale} epochs"
            row["event"] = "; ".join(filter(None, [row.get("event"), self.stopped]))

    def _past_deadline(self) -> bool:
        """True when the next epoch would end after the deadline (judged by the last epoch's length)."""
        if self.config.deadline is None:
            return False
        last = self.history[-1]["epoch_seconds"] if self.history else 0.0
        if time.time() + last <= self.config.deadline:
            return False
        self.stopped = TIME_UP
        return True

    def restore_best(self) -> None:
        """Put the best epoch's weights (and architecture) into the task's model."""
        if self.validated and self.best.weights:
            self.task.restore_model(self.best.architecture, self.best.weights)

    def _run_epoch(self, epoch: int) -> dict:
        c, world = self.config, self.world
        seed = c.seed * 100_003 + epoch
        seed_everything(seed)
        row: dict[str, Any] = {"epoch": epoch}
        row.update(self.task.on_epoch_start(epoch, c.epochs))
        model = self.task.model
        model.train()
        loader = distributed.shard_loader(self.task.make_loader(epoch, seed), world, self.steps, seed,
                                          pin_memory=self.device.type == "cuda")
        if isinstance(loader, DataLoader) and loader.num_workers == 0:
            loader = Prefetcher(loader)  # the next batches are made while this one trains
        if world.rank > 0:  # dropout differs per rank too; rank 0 keeps the single-process sequence
            seed_everything(seed * 1_000_003 + world.rank)
        # A loss read back every step would stall a GPU's queue: there it is checked every CHECK_EVERY steps.
        check = 1 if self.device.type == "cpu" else CHECK_EVERY
        total, count, images = torch.zeros((), dtype=torch.float64, device=self.device), 0, 0
        started = time.perf_counter()
        bar = progress_bar(loader, enabled=c.progress and world.main, total=self.steps,
                           desc=f"epoch {epoch + 1}/{c.epochs}", leave=False)
        for batch in bar:
            total += self._step(devices.to_device(batch, self.device))
            count, images = count + 1, images + len(batch[0])
            if count % check == 0:
                bar.set_postfix(loss=f"{_finite(total.item() / count, epoch):.4f}")
        bar.close()
        _finite(total.item(), epoch)
        loss_sum, steps, images = distributed.sum_across([total.item(), count, images], world, self.device)
        # Weights are equal on every rank; batch-norm statistics are each rank's own: keep rank 0's.
        distributed.broadcast_tensors([b for b in model.buffers() if b.is_floating_point()], world)
        row["train_loss"] = loss_sum / max(steps, 1)
        row["lr"] = self.optimizer.param_groups[0]["lr"]
        row["steps"] = count
        row["epoch_seconds"] = round(time.perf_counter() - started, 2)
        row["images_per_second"] = round(images / max(row["epoch_seconds"], 1e-9), 1)
        row["world_size"] = world.size
        row["precision"] = devices.precision_name(self.amp)  # what --precision resolved to
        metrics = distributed.from_main(self.task.validate() if world.main else None, world)
        row.update({f"val_{k}": v for k, v in metrics.items()})
        return row

    def _step(self, batch: Any) -> torch.Tensor:
        """One optimiser step on ``batch`` (already on the device); returns the loss, detached."""
        c = self.config
        with devices.autocast(self.device, self.amp):
            loss = self.task.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        distributed.all_reduce_gradients(self._clipped, self.world)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        if c.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self._clipped, c.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        return loss.detach().double()


def _finite(loss: float, epoch: int) -> float:
    if not math.isfinite(loss):
        raise FinegrainError(f"training loss became {loss} at epoch {epoch + 1}; lower --lr")
    return loss


class _MemoryLog:
    """The history of a rank other than 0, which writes no files."""

    def __init__(self, history: list[dict]):
        self.history = list(history)

    def log(self, row: dict) -> None:
        self.history.append(row)

    def close(self) -> None:
        pass


def _summary(row: dict, epochs: int) -> str:
    """One line per epoch for logs: loss, validation metrics, speed, and any growth event."""
    parts = [f"epoch {row['epoch'] + 1}/{epochs}", f"loss {row['train_loss']:.4f}"]
    parts += [f"{k[4:]} {v:.4f}" for k, v in row.items() if k.startswith("val_")]
    parts.append(f"{row['epoch_seconds']:.1f} s, {row['images_per_second']:.0f} img/s")
    if row.get("best"):
        parts.append("best so far")
    if row.get("event"):
        parts.append(row["event"])
    return "  ".join(parts)
