"""The per-epoch loader of the tasks that sample images one by one (score, classify), not in P×K batches."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, RandomSampler, Sampler

from finegrain.config import TrainConfig
from finegrain.data import ImageDataset, worker_init_fn


def image_loader(dataset: ImageDataset, cfg: TrainConfig, batch_size: int, draws: int, seed: int,
                 sampler: Sampler | None = None) -> DataLoader:
    """``draws`` images in batches of ``batch_size``: by ``sampler``, else uniformly (with replacement only when
    an epoch asks for more draws than there are images), reproducibly from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    if sampler is None:
        sampler = RandomSampler(dataset, replacement=draws > len(dataset), num_samples=draws, generator=generator)
    if cfg.workers == 0:
        dataset.reseed(seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=cfg.workers, drop_last=True,
                      generator=generator, worker_init_fn=worker_init_fn)
