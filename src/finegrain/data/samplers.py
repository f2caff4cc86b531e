"""P×K batches for metric learning: P classes, K images of each, in every batch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from pytorch_metric_learning.samplers import MPerClassSampler
from pytorch_metric_learning.utils import common_functions as pml_common
from torch.utils.data import Sampler

from finegrain.errors import ConfigError


class PKSampler(Sampler[int]):
    """Indices in consecutive runs of batch_size = P*K: K images from each of P distinct classes.

    Use with `DataLoader(dataset, batch_size=sampler.batch_size, sampler=sampler)`. A thin wrapper
    over pytorch-metric-learning's MPerClassSampler that turns its assertions into messages naming
    the flags. A class with fewer than K images is sampled with replacement (repeated images).
    `seed` makes the sequence reproducible without touching numpy's global generator, which
    MPerClassSampler otherwise draws from.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        p: int,
        k: int,
        length_before_new_iter: int | None = None,
        seed: int | None = None,
    ):
        labels = np.asarray(labels)
        if p < 2:
            raise ConfigError(f"--p must be at least 2 (classes per batch, for negatives), got {p}")
        if k < 2:
            raise ConfigError(f"--k must be at least 2 (images per class, for positives), got {k}")
        n_classes = len(np.unique(labels))
        if n_classes < p:
            raise ConfigError(
                f"--p {p} asks for more classes per batch than the {n_classes} classes in the training data"
            )
        self.p, self.k, self.batch_size = p, k, p * k
        # Default epoch: about one pass over the data, in whole batches, and at least one batch.
        length = length_before_new_iter or len(labels)
        length = max(length - length % self.batch_size, self.batch_size)
        self._sampler = MPerClassSampler(
            labels, m=k, batch_size=self.batch_size, length_before_new_iter=length
        )
        self._rng = np.random.RandomState(seed) if seed is not None else None

    def __len__(self) -> int:
        return len(self._sampler)

    @property
    def num_batches(self) -> int:
        return len(self) // self.batch_size

    def __iter__(self) -> Iterator[int]:
        if self._rng is None:
            return iter(self._sampler)
        # MPerClassSampler builds its whole list inside __iter__, so a temporary swap is enough.
        saved = pml_common.NUMPY_RANDOM
        pml_common.NUMPY_RANDOM = self._rng
        try:
            return iter(list(iter(self._sampler)))
        finally:
            pml_common.NUMPY_RANDOM = saved


def bin_scores(scores: Sequence[float] | np.ndarray, width: float = 1.0) -> np.ndarray:
    """Score bins of ``width`` centred on its multiples: with width 1, 2.4 -> bin 2 and 2.6 -> bin 3."""
    if not width > 0:
        raise ConfigError(f"--bin-width must be positive, got {width}")
    return np.rint(np.asarray(scores, dtype=np.float64) / width).astype(np.int64)


class BalancedBinSampler(Sampler[int]):
    """Class-balanced sampling for regression: each draw picks a bin uniformly, then an image in it uniformly.

    Rare scores (the very low and very high) are seen as often as common ones, which stops a regressor from
    collapsing towards the mean. ``num_samples`` draws per epoch, with replacement; ``seed`` fixes them.
    """

    def __init__(self, bins: Sequence[int] | np.ndarray, num_samples: int, seed: int | None = None):
        bins = np.asarray(bins)
        if len(bins) == 0:
            raise ConfigError("balanced sampling needs at least one image")
        if num_samples < 1:
            raise ConfigError(f"balanced sampling needs a positive number of draws, got {num_samples}")
        self.members = [np.flatnonzero(bins == b) for b in np.unique(bins)]
        self.num_samples = num_samples
        self.seed = seed

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(self.seed)
        which = rng.integers(len(self.members), size=self.num_samples)
        picks = [int(self.members[b][rng.integers(len(self.members[b]))]) for b in which]
        return iter(picks)


class ShardedBatchSampler(Sampler[list[int]]):
    """One rank's share of another batch sampler's batches, for multi-process training.

    Every rank builds the same global sequence of batches (the base sampler is seeded alike on all ranks) and
    keeps batches ``rank, rank + world, rank + 2 * world, ...``: no two ranks draw the same batch, and an index the
    base sampler draws once per epoch is drawn once across all ranks. Each rank yields exactly ``steps`` batches
    so that all ranks take the same number of optimiser steps (gradients are averaged across them at each one);
    only when the base sequence is shorter than ``steps * world`` does it wrap around.
    """

    def __init__(self, batches: Iterable[list[int]], rank: int, world: int, steps: int):
        if world < 1 or not 0 <= rank < world:
            raise ConfigError(f"rank {rank} is not a rank of a world of {world} processes")
        if steps < 1:
            raise ConfigError(f"a rank needs at least one batch per epoch, got {steps}")
        self.batches, self.rank, self.world, self.steps = batches, rank, world, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        batches = [list(b) for b in self.batches]
        if not batches:
            raise ConfigError("the training sampler drew no batch this epoch")
        return iter(batches[(self.rank + self.world * i) % len(batches)] for i in range(self.steps))
