"""P×K batches for metric learning: P classes, K images of each, in every batch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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
