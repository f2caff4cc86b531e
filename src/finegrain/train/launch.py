"""Starting multi-process training: ``--processes N`` spawns N local workers; under ``torchrun`` each process
joins the world torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...), on one machine or several.

Rank 0 trains into ``--out``. Every other rank runs the same code into a private scratch copy of the run folder
that is deleted when it ends, so rank 0 alone writes checkpoints, the model and the logs, and no rank ever reads
a file another is writing. A worker that dies (an error, a SIGKILL) stops the others; ``--resume`` continues from
the last checkpoint rank 0 wrote.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from finegrain.config import TrainConfig
from finegrain.devices import DeviceError, resolve_device
from finegrain.errors import ConfigError, FinegrainError

_RESULT = "result.json"


def torchrun_world() -> int:
    """The world size torchrun (or another launcher setting WORLD_SIZE) gave this process; 1 without one."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(cfg: TrainConfig, resume: bool, quiet: bool, tensorboard: bool, given: Iterable[str] | None,
          override: bool, train: Callable) -> list[dict]:
    """Train ``cfg`` in ``cfg.processes`` local processes, each calling ``train`` (``finegrain.train.run.train``,
    passed in so this module does not import the one that imports it); returns rank 0's history."""
    if torchrun_world() > 1:
        raise ConfigError("--processes starts local workers itself; under torchrun the world size is torchrun's "
                          "(--nproc-per-node, --nnodes): drop --processes")
    device = resolve_device(cfg.device)
    if device.type == "mps":
        raise DeviceError("--processes: torch.distributed has no backend for mps; use --device cpu")
    if device.type == "cuda" and cfg.processes > torch.cuda.device_count():
        raise DeviceError(f"--processes {cfg.processes} on --device cuda needs a GPU per process; this machine has "
                          f"{torch.cuda.device_count()}")
    with tempfile.TemporaryDirectory(prefix="finegrain-launch-") as comm:
        env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
        args = (cfg, resume, quiet, tensorboard, None if given is None else sorted(given), override, env, comm, train)
        try:
            mp.start_processes(_worker, args=args, nprocs=cfg.processes, start_method="spawn", join=True)
        except mp.ProcessExitedException as e:
            raise _worker_error(comm, e.error_index, e.exit_code) from None
        except mp.ProcessRaisedException as e:
            raise FinegrainError(f"training process {e.error_index} failed:\n{e.msg.strip()}") from None
        return json.loads(Path(comm, _RESULT).read_text())["history"]


def _worker_error(comm: str, rank: int, code: int) -> FinegrainError:
    """What a failed run tells the user: the worker's own error if it wrote one, else how it died."""
    errors = sorted(Path(comm).glob("error-*.txt"))
    if errors:
        return FinegrainError(errors[0].read_text())
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
    return FinegrainError(f"training process {rank} {how}; the other processes were stopped. Continue the run "
                          "from its last checkpoint with --resume")


def _worker(rank: int, cfg: TrainConfig, resume: bool, quiet: bool, tensorboard: bool, given: list[str] | None,
            override: bool, env: dict[str, str], comm: str, train: Callable) -> None:
    _die_with_parent()
    # Scratch folders live in the launcher's temporary folder, so they go even when a worker is killed.
    os.environ.update(env, RANK=str(rank), WORLD_SIZE=str(cfg.processes), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(cfg.processes), FINEGRAIN_SCRATCH=comm)
    try:
        history = join_world(cfg, resume, quiet, tensorboard, given, override, train)
    except FinegrainError as e:
        Path(comm, f"error-{rank}.txt").write_text(str(e))
        raise SystemExit(2) from None
    if rank == 0:
        Path(comm, _RESULT).write_text(json.dumps({"history": history}))


def _die_with_parent() -> None:
    """A killed launcher takes its workers with it (Linux): orphans would go on writing the run folder."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


def join_world(cfg: TrainConfig, resume: bool, quiet: bool, tensorboard: bool, given: Iterable[str] | None,
               override: bool, train: Callable) -> list[dict]:
    """Train as one rank of the world described by the environment (torchrun's variables) by calling ``train``;
    rank 0's history on rank 0, the (equal) history of a scratch run elsewhere."""
    if cfg.time_budget is not None:  # each rank would time its trials itself, and they would part ways
        raise ConfigError("--time-budget times its trials in one process: train it without torchrun")
    rank, world = int(os.environ["RANK"]), torchrun_world()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
    changes: dict[str, Any] = {"processes": world, "device": str(device)}
    if cfg.threads is None:  # the processes on one machine share its cores
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        changes["threads"] = max(1, cores // local_world)
    scratch = None
    if rank > 0:
        scratch = Path(tempfile.mkdtemp(prefix=f"finegrain-rank{rank}-", dir=os.environ.get("FINEGRAIN_SCRATCH")))
        if resume and Path(cfg.out).is_dir():  # the same checkpoint to resume from, read from a private copy
            shutil.copytree(cfg.out, scratch, dirs_exist_ok=True)
        changes |= {"out": str(scratch), "progress": False}
    cfg = dataclasses.replace(cfg, **changes)
    typed = None if given is None else {*given, "processes"}  # another world size than the run's is a change
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    try:
        return train(cfg, resume=resume, quiet=quiet or rank > 0, tensorboard=tensorboard and rank == 0,
                     given=typed, override=override).history
    finally:
        dist.destroy_process_group()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
