"""--input-norm image: each image standardised inside the backbone, so every path that runs the model gets it."""

from __future__ import annotations

import pytest
import torch

from finegrain.config import TrainConfig
from finegrain.errors import ConfigError
from finegrain.models import create_backbone, model_from_config
from finegrain.models.backbone import standardize_images
from finegrain.models.heads import RegressionHead
from finegrain.models.model import ScoringModel


def test_standardized_images_have_zero_mean_and_unit_deviation_each():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 16, 16) * torch.tensor([0.1, 1.0, 3.0]).view(3, 1, 1, 1) + 5
    out = standardize_images(x, eps=0)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-4)
    # Against the population deviation computed another way: torch.std with no correction.
    assert torch.allclose(out.std(dim=(1, 2, 3), correction=0), torch.ones(3), atol=1e-4)
    assert torch.isfinite(standardize_images(torch.zeros(1, 3, 8, 8))).all()  # a flat image stays finite


def test_an_image_normed_backbone_ignores_brightness_and_contrast_and_a_fixed_one_does_not():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32) - 0.5
    brighter = 1.5 * x + 0.3  # more contrast and more light: the same picture otherwise
    assert torch.allclose(standardize_images(brighter, eps=0), standardize_images(x, eps=0), atol=1e-5)
    change = {}
    for norm in ("image", "fixed"):
        backbone = create_backbone("conv4", widths=[8, 8, 8, 8], input_norm=norm).eval()
        with torch.no_grad():
            a, b = backbone(x), backbone(brighter)
        change[norm] = ((a - b).norm() / a.norm()).item()
    # Not exactly equal with eps = 0.01 against deviations of about 0.29 and 0.43: the inputs scale 1% apart.
    assert change["image"] < 0.02 and change["fixed"] > 0.3, change


def test_the_setting_is_part_of_the_architecture_and_rebuilds_from_it():
    backbone = create_backbone("conv4", widths=[8, 8, 8, 8], input_norm="image")
    model = ScoringModel(backbone, RegressionHead(backbone.num_features)).eval()
    assert model.config()["backbone"]["input_norm"] == "image"
    rebuilt = model_from_config(model.config())
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), model(x))
    # The default is left out of the description, so model files written before the setting existed still match.
    assert "input_norm" not in create_backbone("conv4", widths=[8, 8, 8, 8]).config()


def test_bad_values_and_a_backbone_without_the_setting_are_named():
    with pytest.raises(ConfigError, match="'conv4' takes input_norm fixed or image, not 'mean'"):
        create_backbone("conv4", input_norm="mean")
    with pytest.raises(ConfigError, match="'lbp' takes input_norm fixed, not 'image'"):
        create_backbone("lbp", input_norm="image")


def test_the_default_is_fixed_and_lbp_takes_nothing_else(tmp_path):
    def resolved(**kw):
        return TrainConfig(data=str(tmp_path), **kw).validate().input_norm

    assert resolved(task="score") == "fixed" and resolved(task="embed") == "fixed"
    assert resolved(task="score", input_norm="image") == "image"
    with pytest.raises(ConfigError, match="--input-norm must be fixed for --backbone lbp"):
        resolved(task="score", backbone="lbp", input_norm="image")
