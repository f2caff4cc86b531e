import pytest
from torch import nn

from finegrain.errors import ConfigError
from finegrain.models import Backbone, create_backbone, list_backbones, register_backbone, registry


@pytest.fixture
def isolated_registry(monkeypatch):
    # Registering test backbones must not leak into list_backbones() for other tests.
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_importing_the_package_registers_every_backbone():
    assert list_backbones() == ["conv4", "lbp", "mobilenet_v2", "resnet", "tiny_darknet"]
    assert list_backbones(growable=False) == ["lbp"]


def test_create_backbone_builds_the_registered_class():
    backbone = create_backbone("conv4")
    assert isinstance(backbone, Backbone)
    assert backbone.name == "conv4"
    assert backbone.config()["name"] == "conv4"


def test_unknown_backbone_lists_the_known_names():
    with pytest.raises(ConfigError) as err:
        create_backbone("vgg16")
    message = str(err.value)
    assert "vgg16" in message
    for name in list_backbones():
        assert name in message


def test_unknown_option_is_named():
    with pytest.raises(ConfigError, match="colour"):
        create_backbone("conv4", colour="red")


def test_config_name_must_match_the_requested_backbone():
    cfg = create_backbone("conv4").config()
    with pytest.raises(ConfigError, match="resnet"):
        create_backbone("resnet", **cfg)


@pytest.mark.usefixtures("isolated_registry")
def test_register_backbone_decorator_makes_a_class_buildable():
    @register_backbone("toy")
    class Toy(Backbone):
        def __init__(self, widths=None):
            super().__init__()
            self.stages = nn.Sequential(nn.Conv2d(3, (widths or [5])[0], 3))

        def width_layers(self):
            return [self.stages[0]]

        def _arch_config(self):
            return {}

    assert "toy" in list_backbones()
    toy = create_backbone("toy", widths=[7])
    assert isinstance(toy, Toy)
    assert toy.num_features == 7
    assert toy.config() == {"name": "toy", "widths": [7]}


@pytest.mark.usefixtures("isolated_registry")
def test_registering_a_different_class_under_a_taken_name_fails():
    with pytest.raises(ConfigError, match="conv4"):

        @register_backbone("conv4")
        class Impostor(Backbone):
            pass
