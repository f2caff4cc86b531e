"""Test-time augmentation: the views, their average, and the option's errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from finegrain.encoders import load_encoder
from finegrain.encoders.tta import parse_tta, views
from finegrain.errors import ConfigError


def test_parse():
    assert parse_tta(None) == () and parse_tta("none") == () and parse_tta("") == ()
    assert parse_tta("flip, crops,flip") == ("flip", "crops")
    with pytest.raises(ConfigError, match="--tta"):
        parse_tta("flip,rotate")


@pytest.mark.parametrize("spec, count", [("flip", 2), ("crops", 6), ("scales", 3), ("crops,flip", 12),
                                         ("flip,crops,scales", 14)])
def test_view_counts_and_shapes(spec, count):
    x = torch.randn(2, 3, 32, 32)
    vs = [v() for v in views(x, parse_tta(spec))]
    assert len(vs) == count
    assert all(v.shape == x.shape for v in vs)
    assert torch.equal(vs[0], x)


def test_flip_mirrors_left_right():
    x = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 3, 4, 4)
    flipped = views(x, ("flip",))[1]()
    assert torch.equal(flipped[0, 0, 0], torch.tensor([3.0, 2.0, 1.0, 0.0]))


def test_corner_crop_reads_the_corner():
    x = torch.zeros(1, 3, 32, 32)
    x[..., :16, :16] = 1.0  # top-left quadrant bright
    crops = [v() for v in views(x, ("crops",))]
    assert crops[1].mean() > x.mean() > crops[4].mean()  # top-left crop vs bottom-right crop


def test_embedder_averages_the_views(tiny_model, images):
    plain = load_encoder(tiny_model)
    tta = load_encoder(tiny_model, tta="flip")
    x = plain.preprocess.to_tensor(images)
    with torch.no_grad():
        expected = F.normalize(plain.model(x) + plain.model(torch.flip(x, dims=[3])), dim=1).numpy()
    got = tta.encode_array(images)
    assert np.allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, plain.encode_array(images), atol=1e-3)


def test_mirror_symmetric_images_are_unchanged_by_flip(tiny_model, images):
    symmetric = np.concatenate([images[:, :, :16], images[:, :, :16][:, :, ::-1]], axis=2)
    plain = load_encoder(tiny_model).encode_array(symmetric)
    assert np.allclose(load_encoder(tiny_model, tta="flip").encode_array(symmetric), plain, atol=1e-5)


def test_a_scorer_averages_the_scores_of_the_views(tmp_path, make_model, images):
    """Scores are numbers, not unit vectors: TTA averages them (it used to crash normalising a 1-D tensor)."""
    model = make_model(tmp_path / "scorer.safetensors", kind="score")
    plain, tta = load_encoder(model), load_encoder(model, tta="flip")
    x = plain.preprocess.to_tensor(images)
    with torch.no_grad():
        expected = ((plain.model(x) + plain.model(torch.flip(x, dims=[3]))) / 2).numpy()
    got = tta.encode_array(images)
    assert got.shape == (12,) and np.allclose(got, expected, atol=1e-5)


def test_the_default_tta_comes_from_the_model_file(tmp_path, make_model, images):
    from finegrain.encoders.edit import combine_models

    a, b = make_model(tmp_path / "a.safetensors", seed=1), make_model(tmp_path / "b.safetensors", seed=2)
    combine_models([a, b], tmp_path / "meta", tta="flip")
    assert load_encoder(tmp_path / "meta").tta == ("flip",)
    assert load_encoder(tmp_path / "meta", tta="none").tta == ()
    assert np.allclose(load_encoder(tmp_path / "meta").encode_array(images),
                       load_encoder(tmp_path / "meta", tta="flip").encode_array(images))
