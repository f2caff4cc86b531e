import json

import pytest
import torch
from torch import nn

from finegrain.errors import ConfigError
from finegrain.models import create_backbone, list_backbones

# Written out by hand (not read from the backbones) so a topology change has to be made on purpose.
OUTPUT_STRIDE = {"conv4": 16, "resnet": 8, "mobilenet_v2": 16, "tiny_darknet": 16}
DEFAULT_FEATURES = {"conv4": 64, "resnet": 256, "mobilenet_v2": 384, "tiny_darknet": 128}
BACKBONES = list_backbones(growable=True)  # lbp has its own tests (test_lbp.py)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_expectations_cover_every_backbone():
    assert set(OUTPUT_STRIDE) == set(BACKBONES) == set(DEFAULT_FEATURES)


@pytest.mark.parametrize("name", BACKBONES)
def test_feature_map_shape_and_num_features(name):
    backbone = create_backbone(name)
    assert backbone.num_features == DEFAULT_FEATURES[name]
    stride = OUTPUT_STRIDE[name]
    out = backbone.forward_features(torch.randn(2, 3, 32, 48))
    assert out.shape == (2, DEFAULT_FEATURES[name], 32 // stride, 48 // stride)
    assert backbone(torch.randn(1, 3, 32, 32)).shape[1] == backbone.num_features


@pytest.mark.parametrize("name", BACKBONES)
def test_smallest_input_gives_a_1x1_map_and_smaller_is_rejected(name):
    backbone = create_backbone(name).eval()
    size = backbone.min_input_size
    assert size == OUTPUT_STRIDE[name]
    assert backbone.forward_features(torch.randn(1, 3, size, size)).shape[-2:] == (1, 1)
    with pytest.raises(ConfigError, match="image size"):
        backbone.forward_features(torch.randn(1, 3, size - 1, size))


@pytest.mark.parametrize("name", BACKBONES)
def test_gradients_reach_every_parameter(name):
    backbone = create_backbone(name)
    backbone.forward_features(torch.randn(4, 3, 32, 32)).pow(2).mean().backward()
    for pname, p in backbone.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", BACKBONES)
def test_rebuild_from_config_gives_identical_outputs(name):
    original = create_backbone(name)
    original(torch.randn(4, 3, 32, 32))  # move batch-norm running stats away from their init
    original.eval()
    cfg = original.config()
    json.dumps(cfg)  # plain data only: it goes into checkpoints and logs

    rebuilt = create_backbone(cfg["name"], **cfg)
    rebuilt.load_state_dict(original.state_dict())
    rebuilt.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(original.forward_features(x), rebuilt.forward_features(x))
    assert rebuilt.config() == cfg


@pytest.mark.parametrize("name", BACKBONES)
def test_custom_widths_are_honoured(name):
    widths = [max(1, w // 2) for w in create_backbone(name).config()["widths"]]
    widths[-1] = 24
    backbone = create_backbone(name, widths=widths)
    assert backbone.config()["widths"] == widths
    assert backbone.num_features == 24
    assert backbone.forward_features(torch.randn(1, 3, 32, 32)).shape[1] == 24


@pytest.mark.parametrize("name", BACKBONES)
def test_width_multiplier_scales_the_network(name):
    full = create_backbone(name)
    half = create_backbone(name, width_multiplier=0.5)
    n_params = [sum(p.numel() for p in b.parameters()) for b in (full, half)]
    assert n_params[1] < 0.6 * n_params[0]


@pytest.mark.parametrize("name", BACKBONES)
def test_deeper_depths_add_layers_and_round_trip(name):
    depths = create_backbone(name).config()["depths"]
    deeper = [d + 1 for d in depths]
    backbone = create_backbone(name, depths=deeper)
    cfg = backbone.config()
    assert cfg["depths"] == deeper
    assert len(cfg["widths"]) > len(create_backbone(name).config()["widths"])
    create_backbone(name, **cfg).load_state_dict(backbone.state_dict())


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"width_multiplier": 0}, "width_multiplier"),
        ({"widths": [8, 8]}, "widths"),
        ({"widths": [8, 8, 8, -8]}, "widths"),
        ({"activation": "swish"}, "activation"),
        ({"batch_norm": "yes"}, "batch_norm"),
        ({"depths": []}, "depths"),
        ({"depths": [1, 0, 1, 1]}, "depths"),
    ],
)
def test_bad_options_are_named(options, param):
    with pytest.raises(ConfigError, match=param):
        create_backbone("conv4", **options)


def test_widths_and_width_multiplier_together_are_rejected():
    with pytest.raises(ConfigError, match="width_multiplier"):
        create_backbone("resnet", widths=[8] * 9, width_multiplier=2.0)


def test_mobilenet_needs_one_depth_per_stage():
    with pytest.raises(ConfigError, match="depths"):
        create_backbone("mobilenet_v2", depths=[1, 1])


def test_defaults_match_the_documented_architectures():
    assert create_backbone("conv4").config()["widths"] == [64, 64, 64, 64]
    tiny = create_backbone("tiny_darknet")
    assert tiny.config()["widths"] == [16, 32, 16, 128, 16, 128, 32, 256, 32, 256, 64, 512, 64, 512, 128]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in tiny.modules())
    assert any(isinstance(m, nn.ELU) for m in tiny.modules())
    resnet = create_backbone("resnet").config()
    assert resnet["widths"] == [32, 32, 32, 64, 64, 128, 128, 256, 256]
    assert resnet["depths"] == [1, 1, 1, 1]
    assert create_backbone("mobilenet_v2").config()["activation"] == "relu6"


def test_no_batch_norm_option_removes_every_batch_norm():
    backbone = create_backbone("resnet", batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())
    assert all(m.bias is not None for m in backbone.width_layers())


def test_mobilenet_projection_is_linear_and_residual_only_where_shapes_match():
    backbone = create_backbone("mobilenet_v2")
    blocks = [block for stage in list(backbone.stages)[1:-1] for block in stage]
    # The projection (last conv -> bn) has no activation after it: the linear bottleneck.
    assert all(isinstance(block.conv[-1], nn.BatchNorm2d) for block in blocks)
    # Per stage only the later blocks (stride 1, same width) add their input back.
    assert [block.use_residual for block in blocks] == [False, False, True, False, True, True, False, True, False, True]
    residual = blocks[2].eval()
    x = torch.randn(1, residual.conv[0].in_channels, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(residual(x), x + residual.conv(x))


def test_config_follows_in_place_widening():
    # What a Net2Net widening does: swap the last conv + bn for wider ones, then save the config.
    backbone = create_backbone("conv4")
    last = backbone.stages[3]
    last[0] = nn.Conv2d(64, 80, 3, padding=1, bias=False)
    last[1] = nn.BatchNorm2d(80)
    cfg = backbone.config()
    assert cfg["widths"] == [64, 64, 64, 80]
    assert backbone.num_features == 80
    rebuilt = create_backbone(cfg["name"], **cfg)
    rebuilt.load_state_dict(backbone.state_dict())
    assert rebuilt.forward_features(torch.randn(1, 3, 28, 28)).shape == (1, 80, 1, 1)


def test_conv4_omniglot_batch_forward_and_backward():
    # The Omniglot workload: a 64-image batch of 28x28 on CPU must stay cheap (kept lean, not timed).
    backbone = create_backbone("conv4")
    x = torch.randn(64, 3, 28, 28)
    for _ in range(3):
        backbone.zero_grad()
        out = backbone.forward_features(x)
        assert out.shape == (64, 64, 1, 1)
        out.pow(2).mean().backward()
    assert all(p.grad is not None for p in backbone.parameters())


def test_resnet_stem_stride_halves_the_map_and_round_trips():
    plain, strided = create_backbone("resnet"), create_backbone("resnet", stem_stride=2)
    x = torch.randn(1, 3, 64, 64)
    assert plain.forward_features(x).shape[-1] == 8 and strided.forward_features(x).shape[-1] == 4
    cfg = strided.config()
    assert cfg["stem_stride"] == 2
    again = create_backbone(cfg["name"], **{k: v for k, v in cfg.items() if k != "name"})
    again.load_state_dict(strided.state_dict())
    assert torch.equal(again.eval().forward_features(x), strided.eval().forward_features(x))
    with pytest.raises(ConfigError, match="stem_stride"):
        create_backbone("resnet", stem_stride=3)
