from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from finegrain.data.samplers import PKSampler
from finegrain.errors import ConfigError


def make_labels():
    # Uneven classes, one smaller than K (sampled with replacement).
    return np.repeat(np.arange(10), [8, 5, 12, 4, 6, 9, 4, 7, 3, 10])


def test_every_batch_has_k_of_p_classes():
    labels = make_labels()
    sampler = PKSampler(labels, p=4, k=4, length_before_new_iter=400, seed=0)
    assert len(sampler) == 400 and sampler.num_batches == 25
    indices = list(sampler)
    for start in range(0, len(indices), 16):
        counts = Counter(labels[indices[start : start + 16]].tolist())
        assert len(counts) == 4 and set(counts.values()) == {4}


def test_dataloader_batches():
    labels = make_labels()
    sampler = PKSampler(labels, p=3, k=2, seed=1)
    assert len(sampler) % 6 == 0 and len(sampler) <= len(labels)
    loader = DataLoader(
        TensorDataset(torch.from_numpy(labels)), batch_size=sampler.batch_size, sampler=sampler
    )
    for (batch,) in loader:
        counts = Counter(batch.tolist())
        assert len(counts) == 3 and set(counts.values()) == {2}


def test_seed_is_reproducible_and_leaves_global_state():
    labels = make_labels()
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    a = list(PKSampler(labels, p=4, k=2, seed=3))
    assert np.array_equal(np.random.get_state()[1], state)
    assert a == list(PKSampler(labels, p=4, k=2, seed=3))
    sampler = PKSampler(labels, p=4, k=2, seed=3)
    assert list(sampler) != list(sampler)  # a new epoch draws new batches


@pytest.mark.parametrize(
    ("p", "k", "flag"), [(11, 2, "--p 11 asks for more classes"), (1, 4, "--p must"), (4, 1, "--k must")]
)
def test_bad_p_k(p, k, flag):
    with pytest.raises(ConfigError, match=flag):
        PKSampler(make_labels(), p=p, k=k)
