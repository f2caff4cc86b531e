"""Torch dataset over cached rows: no decoding per item, only augmentation and normalisation."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from finegrain.data.augment import seed_transform
from finegrain.data.cached_images import CachedImages


class ImageDataset(Dataset):
    """Yields (float32 C×H×W tensor normalised with mean/std, target tensor).

    Targets are int64 class indices or float32 scores, by the dtype of `targets`.
    """

    def __init__(
        self,
        images: CachedImages | Sequence[np.ndarray],
        targets: np.ndarray | Sequence[float] | Sequence[int],
        transform: Callable[..., dict] | None = None,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
    ):
        targets = np.asarray(targets)
        if len(targets) != len(images):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images
        self.targets = (
            targets.astype(np.float32)
            if np.issubdtype(targets.dtype, np.floating)
            else targets.astype(np.int64)
        )
        self.transform = transform
        # Folded into one multiply-add: x * scale + shift == (x / 255 - mean) / std.
        std_arr = np.asarray(std, dtype=np.float32)
        self._scale = torch.from_numpy(1.0 / (255.0 * std_arr)).view(-1, 1, 1)
        self._shift = torch.from_numpy(-np.asarray(mean, dtype=np.float32) / std_arr).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.images[i]
        if self.transform is not None:
            img = self.transform(image=img)["image"]
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))
        return x.mul_(self._scale).add_(self._shift), torch.as_tensor(self.targets[i])

    def reseed(self, seed: int) -> None:
        """Make augmentation draws reproducible from `seed` (the trainer calls this with num_workers=0)."""
        if self.transform is not None and hasattr(self.transform, "set_random_state"):
            seed_transform(self.transform, seed)


def worker_init_fn(worker_id: int) -> None:
    """DataLoader hook: seed numpy, random and the dataset's augmentation from the worker's torch seed.

    torch gives each worker base_seed + worker_id, with base_seed drawn from the loader's generator,
    so a seeded generator makes every worker, and every epoch, reproducible and distinct. Without
    this, each worker inherits the parent's albumentations generator as it was at fork time, so
    workers replay each other's draws and every epoch repeats the previous epoch's augmentations.
    """
    seed = torch.initial_seed()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    info = get_worker_info()
    dataset = info.dataset if info is not None else None
    while dataset is not None and not hasattr(dataset, "reseed"):
        dataset = getattr(dataset, "dataset", None)  # unwrap Subset and similar wrappers
    if dataset is not None:
        dataset.reseed(seed)
