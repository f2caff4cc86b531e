"""Multi-process training on ``torch.distributed``: the world a process is in, and the collectives the trainer uses.

Every rank holds the same model and takes the same optimiser steps: each step's gradients are averaged across the
ranks (one flattened all-reduce of every gradient, as DistributedDataParallel does in buckets), so the weights
stay equal. Batches are sharded so that no two ranks draw the same one (``ShardedBatchSampler``); losses are
summed across ranks; rank 0 alone validates and broadcasts the result, so every rank takes the same decisions
(best epoch, early stop, Net2Net growth, deadline).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from finegrain.data.samplers import ShardedBatchSampler
from finegrain.errors import FinegrainError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The rank that validates and writes the run folder."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def current() -> World:
    """The world of this process: one process unless a process group is initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    rank = dist.get_rank()
    return World(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))


def shard_loader(loader: DataLoader, world: World, steps: int, seed: int, pin_memory: bool) -> DataLoader:
    """The task's epoch loader, reduced to this rank's ``steps`` batches (and pinned for a GPU).

    The task built ``loader`` with a sampler seeded alike on every rank; only the batches kept differ. Worker
    seeds (augmentation) are drawn per rank, so ranks do not replay each other's augmentations.
    """
    if not isinstance(loader, DataLoader):
        if world.active:
            raise FinegrainError("multi-process training shards a DataLoader's batches; this task's loader is a "
                                 f"{type(loader).__name__}")
        return loader
    if not world.active and not pin_memory:
        return loader
    batches: Any = loader.batch_sampler
    generator = loader.generator
    if world.active:
        batches = ShardedBatchSampler(batches, world.rank, world.size, steps)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + world.rank)
        if loader.num_workers == 0 and hasattr(loader.dataset, "reseed"):
            loader.dataset.reseed(seed * 1_000_003 + world.rank)
    return DataLoader(
        loader.dataset, batch_sampler=batches, num_workers=loader.num_workers, collate_fn=loader.collate_fn,
        pin_memory=pin_memory, worker_init_fn=loader.worker_init_fn, generator=generator,
        prefetch_factor=loader.prefetch_factor, persistent_workers=loader.persistent_workers,
    )


def all_reduce_gradients(parameters: list[nn.Parameter], world: World) -> None:
    """Average the gradients of ``parameters`` across ranks (in place), in one collective."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not world.active or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat.div_(world.size)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_tensors(tensors: list[torch.Tensor], world: World) -> None:
    """Overwrite ``tensors`` with rank 0's values (weights after a change, batch-norm statistics each epoch)."""
    if not world.active or not tensors:
        return
    with torch.no_grad():
        flat = torch.cat([t.detach().reshape(-1).float() for t in tensors])
        dist.broadcast(flat, src=0)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t).to(t.dtype))
            offset += t.numel()


def sum_across(values: list[float], world: World, device: torch.device) -> list[float]:
    """Each value summed over the ranks (an epoch's loss total, steps and images)."""
    if not world.active:
        return values
    # NCCL reduces GPU tensors only; gloo takes CPU ones.
    t = torch.tensor(values, dtype=torch.float64, device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t)
    return t.tolist()


def from_main(value: T, world: World) -> T:
    """Rank 0's ``value`` on every rank (a picklable object: validation metrics, a stop decision)."""
    if not world.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
