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


def test_bin_scores_centres_bins_on_multiples_of_the_width():
    from finegrain.data import bin_scores

    assert bin_scores([1.02, 2.4, 2.6, 4.75]).tolist() == [1, 2, 3, 5]
    assert bin_scores([0.2, 0.3, 0.8], width=0.5).tolist() == [0, 1, 2]
    with pytest.raises(ConfigError, match="bin-width"):
        bin_scores([1.0], width=0)


def test_balanced_bin_sampler_draws_bins_uniformly_not_by_their_size():
    from scipy import stats

    from finegrain.data import BalancedBinSampler

    # Very unequal bins: 500, 50 and 5 images.
    bins = np.array([0] * 500 + [1] * 50 + [2] * 5)
    draws = np.array(list(BalancedBinSampler(bins, num_samples=6000, seed=0)))
    counts = np.bincount(bins[draws], minlength=3)
    # Uniform over bins: a chi-square test does not reject (p well above 0.01 with this seed).
    assert stats.chisquare(counts).pvalue > 0.01
    assert counts.min() > 1800
    # Within the small bin every image is drawn, and only images of that bin.
    assert set(draws[bins[draws] == 2]) == {550, 551, 552, 553, 554}


def test_balanced_bin_sampler_is_reproducible_and_checks_arguments():
    from finegrain.data import BalancedBinSampler

    bins = np.array([0, 0, 1, 2, 2, 2])
    assert list(BalancedBinSampler(bins, 50, seed=3)) == list(BalancedBinSampler(bins, 50, seed=3))
    assert list(BalancedBinSampler(bins, 50, seed=3)) != list(BalancedBinSampler(bins, 50, seed=4))
    assert len(BalancedBinSampler(bins, 50)) == 50
    with pytest.raises(ConfigError):
        BalancedBinSampler([], 5)
    with pytest.raises(ConfigError):
        BalancedBinSampler(bins, 0)
