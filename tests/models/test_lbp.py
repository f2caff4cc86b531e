"""The LBP backbone: codes and histograms against plain loops; a model with it saves, loads and embeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from finegrain.errors import ConfigError
from finegrain.models import create_model, load_model, save_model
from finegrain.models.backbones.lbp import BINS, lbp_codes, lbp_histograms, uniform_table

NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]


def loop_codes(g: np.ndarray, r: int = 1) -> np.ndarray:
    h, w = g.shape
    out = np.zeros((h - 2 * r, w - 2 * r), dtype=np.int64)
    for y in range(r, h - r):
        for x in range(r, w - r):
            out[y - r, x - r] = sum(int(g[y + r * dy, x + r * dx] >= g[y, x]) << b
                                    for b, (dy, dx) in enumerate(NEIGHBOURS))
    return out


def test_uniform_table_has_58_uniform_patterns():
    table = uniform_table()
    assert len(set(table.tolist())) == 59
    assert int((table < 58).sum()) == 58
    assert table[0] != 58 and table[255] != 58  # flat: all neighbours brighter, or all darker
    assert table[0b01010101] == 58  # 8 transitions


def test_codes_match_a_loop():
    g = torch.randint(0, 5, (2, 9, 11)).float()  # few levels, so ties (>=) occur
    got = lbp_codes(g)
    for i in range(2):
        assert np.array_equal(got[i].numpy(), loop_codes(g[i].numpy()))


@pytest.mark.parametrize("radius", [2, 3])
def test_codes_at_a_larger_radius_match_a_loop(radius):
    g = torch.randint(0, 5, (2, 12, 10)).float()
    got = lbp_codes(g, radius)
    assert got.shape == (2, 12 - 2 * radius, 10 - 2 * radius)
    for i in range(2):
        assert np.array_equal(got[i].numpy(), loop_codes(g[i].numpy(), radius))


def test_radius_shrinks_the_grid_and_round_trips(tmp_path):
    model = create_model("lbp", embedding_size=8, pooling="avg", image_size=40, cell=8, radius=3).eval()
    assert model.backbone.num_features == BINS * (4 * 4 + 3 * 3)  # 34 px → 4 cells; 30 − 6 = 24 px → 3 cells
    assert create_model("lbp", image_size=44, cell=8, radius=3).backbone.num_features == BINS * (4 * 4 + 3 * 3)
    x = torch.rand(2, 3, 40, 40)
    save_model(model, tmp_path / "m.safetensors", preprocessing={"image_size": 40})
    again, _ = load_model(tmp_path / "m.safetensors")
    assert again.backbone.radius == 3 and torch.allclose(again(x), model(x), atol=1e-6)


def test_histograms_match_a_loop():
    g = torch.randint(0, 255, (2, 24, 26)).float()
    table = uniform_table()
    got = lbp_histograms(g, table, cell=5).numpy()
    bins = table[lbp_codes(g)].numpy()  # 22 x 24: 4 x 4 whole cells of 5
    for i in range(2):
        expected = [np.bincount(bins[i, cy * 5:(cy + 1) * 5, cx * 5:(cx + 1) * 5].ravel(), minlength=BINS) / 25
                    for cy in range(4) for cx in range(4)]
        assert np.allclose(got[i], np.concatenate(expected))


def test_model_round_trip_and_shapes(tmp_path):
    model = create_model("lbp", embedding_size=16, pooling="avg", image_size=40, cell=8).eval()
    assert model.backbone.num_features == BINS * (4 * 4 + 3 * 3)  # 38 px → 4 cells, 30 × 0.75 → 28 px → 3 cells
    x = torch.randn(3, 3, 40, 40)
    y = model(x)
    assert y.shape == (3, 16) and torch.allclose(y.norm(dim=1), torch.ones(3), atol=1e-5)
    save_model(model, tmp_path / "m.safetensors", preprocessing={"image_size": 40})
    again, _ = load_model(tmp_path / "m.safetensors")
    assert torch.allclose(again(x), y, atol=1e-6)


def test_brightness_and_contrast_do_not_change_the_features():
    backbone = create_model("lbp", image_size=32, cell=8, scales=[1.0]).backbone
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(backbone.forward_features(x), backbone.forward_features(0.5 * x + 0.2), atol=1e-6)


def test_cannot_grow():
    backbone = create_model("lbp", image_size=32, cell=8).backbone
    with pytest.raises(ConfigError, match="Net2Net"):
        backbone.width_layers()
    with pytest.raises(ConfigError, match="cell"):
        create_model("lbp", image_size=32, cell=2)
    with pytest.raises(ConfigError, match="radius"):
        create_model("lbp", image_size=32, cell=8, radius=0)
    with pytest.raises(ConfigError, match="whole cell"):
        create_model("lbp", image_size=20, cell=10, radius=3)  # 15 px at scale 0.75 leaves 15 − 6 = 9 < 10
