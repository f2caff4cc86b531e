import pytest
import torch
from torch import nn

from finegrain.errors import ConfigError
from finegrain.models import create_model, list_backbones, load_model, model_from_config, save_model
from finegrain.models.net2net import apply_growth, deepen, parse_growth, widen, widen_group

BACKBONES = list_backbones(growable=True)  # lbp has its own tests (test_lbp.py)


def _model(name: str, activation: str = "relu", batch_norm: bool = True) -> nn.Module:
    torch.manual_seed(0)
    model = create_model(name, embedding_size=16, pooling="gem", activation=activation, batch_norm=batch_norm)
    model = model.double()
    # Non-trivial statistics and affine parameters, so copying them (or not) shows in the output.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def _x() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _max_change(model: nn.Module, grow) -> float:
    x = _x()
    with torch.no_grad():
        before = model(x)
        grow(model)
        return (model(x) - before).abs().max().item()


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("name", BACKBONES)
def test_widen_preserves_the_function(name, batch_norm):
    model = _model(name, batch_norm=batch_norm)
    widths = model.backbone.config()["widths"]
    assert _max_change(model, lambda m: widen(m, 1.5)) <= 1e-5
    grown = model.backbone.config()["widths"]
    assert all(g >= round(w * 1.5) for w, g in zip(widths, grown))
    assert model.head.fc.in_features == model.backbone.num_features == grown[-1]


@pytest.mark.parametrize("name", BACKBONES)
def test_widen_with_zero_sum_noise_still_preserves_the_function_but_breaks_symmetry(name):
    exact, noisy = _model(name), _model(name)
    widen(exact, 2.0)
    assert _max_change(noisy, lambda m: widen(m, 2.0, noise=0.1)) <= 1e-5

    def distinct_columns(model):
        w = model.head.fc.weight.detach()
        return torch.unique(w, dim=1).shape[1]

    # Exact copies read their channels with identical weights; the noise makes every copy different.
    assert distinct_columns(exact) < exact.head.fc.in_features
    assert distinct_columns(noisy) == noisy.head.fc.in_features


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("name", BACKBONES)
def test_deepen_with_relu_preserves_the_function_at_every_site(name, batch_norm):
    model = _model(name, activation="relu", batch_norm=batch_norm)
    for site in range(model.backbone.deepen_sites):
        depths = model.backbone.config()["depths"]
        assert _max_change(model, lambda m, s=site: deepen(m, s)) <= 1e-5
        assert model.backbone.config()["depths"][site] == depths[site] + 1


@pytest.mark.parametrize("name", BACKBONES)
def test_grown_model_rebuilds_from_its_config_and_survives_save_load(name, tmp_path):
    model = _model(name)
    widen(model, 1.5, noise=0.05)
    deepen(model)
    x = _x()
    rebuilt = model_from_config(model.config()).double().eval()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(x), model(x))
    save_model(model.float(), tmp_path / "m.safetensors", preprocessing={"image_size": 40})
    loaded, _ = load_model(tmp_path / "m.safetensors")
    torch.testing.assert_close(loaded(x.float()), model(x.float()))


def test_widen_copies_batch_norm_statistics_for_every_new_channel():
    model = _model("conv4")
    bn = model.backbone.stages[0][1]
    old_mean = bn.running_mean.clone()
    widen(model, 2.0)
    assert bn.running_mean.shape == (128,)
    # Every new channel's statistics equal some old channel's.
    assert all((old_mean == v).any() for v in bn.running_mean)


def test_deepen_with_elu_is_approximate_and_the_change_is_measurable():
    # ELU(ELU(x)) != ELU(x) for x < 0, so an identity conv between two ELUs changes the output a little.
    model = _model("tiny_darknet", activation="elu", batch_norm=False)
    change = _max_change(model, deepen)
    assert 1e-5 < change < 1.0


def test_widen_group_rejects_shrinking_and_grouped_consumers():
    model = _model("conv4")
    group = model.backbone.width_groups()[0]
    with pytest.raises(ConfigError, match="must exceed"):
        widen_group(group, group.width)
    mobile = _model("mobilenet_v2")
    expand = mobile.backbone.width_groups()[0]
    expand.consumers.append(expand.depthwise[0][0])
    with pytest.raises(ConfigError, match="grouped conv"):
        widen_group(expand, expand.width + 2)


def test_widen_and_deepen_validate_arguments():
    model = _model("conv4")
    with pytest.raises(ConfigError, match="above 1"):
        widen(model, 1.0)
    with pytest.raises(ConfigError, match="noise"):
        widen(model, 2.0, noise=-1)
    with pytest.raises(ConfigError, match="site"):
        deepen(model, 9)


def test_parse_growth():
    assert parse_growth("deepen, widen:1.5,deepen:2,widen") == [
        ("deepen", None), ("widen", 1.5), ("deepen", 2.0), ("widen", None)
    ]
    assert parse_growth("") == []
    for bad, message in [("shrink", "unknown step"), ("widen:x", "number"), ("widen:0.5", "above 1"),
                         ("deepen:1.5", "stage index")]:
        with pytest.raises(ConfigError, match=message):
            parse_growth(bad)


def test_apply_growth_defaults():
    model = _model("conv4")
    assert "x2" in apply_growth(model, ("widen", None))
    assert model.backbone.config()["widths"] == [128] * 4
    apply_growth(model, ("deepen", 1.0))
    assert model.backbone.config()["depths"] == [1, 2, 1, 1]


def test_grown_model_trains():
    model = _model("resnet").float().train()
    widen(model, 1.5, noise=0.05)
    deepen(model)
    x, target = torch.randn(8, 3, 32, 32), torch.randn(8, 16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = (model(x) - nn.functional.normalize(target, dim=1)).pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
