"""Feature normalisation: whitening gives identity covariance; stored with the model; applied on load."""

from __future__ import annotations

import numpy as np
import pytest

from finegrain.encoders.normalize import FeatureNormalizer
from finegrain.errors import ConfigError


def correlated(n=500, e=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, e)) @ rng.normal(size=(e, e)) + rng.normal(size=e) * 3


def test_whitening_makes_training_covariance_identity():
    x = correlated()
    norm = FeatureNormalizer.fit(x, "whiten")
    y = norm.transform(x, l2=False)
    assert np.allclose(y.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(np.cov(y, rowvar=False), np.eye(16), atol=1e-3)


def test_whitening_to_fewer_dimensions_keeps_the_top_axes():
    x = correlated()
    y = FeatureNormalizer.fit(x, "whiten", dim=5).transform(x, l2=False)
    assert y.shape == (500, 5)
    assert np.allclose(np.cov(y, rowvar=False), np.eye(5), atol=1e-3)


def test_center_and_l2():
    x = correlated()
    c = FeatureNormalizer.fit(x, "center").transform(x)
    assert np.allclose(np.linalg.norm(c, axis=1), 1, atol=1e-5)
    manual = x - x.mean(axis=0)
    assert np.allclose(c, manual / np.linalg.norm(manual, axis=1, keepdims=True), atol=1e-5)
    plain = FeatureNormalizer.fit(x, "l2").transform(x)
    assert np.allclose(plain, x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-5)


def test_round_trip_through_a_model_file_entry():
    x = correlated()
    norm = FeatureNormalizer.fit(x, "whiten", dim=8)
    entry, tensors = norm.to_artifact("normalizer")
    again = FeatureNormalizer.from_artifact(entry, tensors, "normalizer")
    assert np.allclose(again.transform(x), norm.transform(x))


def test_errors_name_the_flag():
    with pytest.raises(ConfigError, match="--method"):
        FeatureNormalizer.fit(correlated(), "zca")
    with pytest.raises(ConfigError, match="--dim"):
        FeatureNormalizer.fit(correlated(n=10), "whiten", dim=20)
