"""The contract every backbone follows, plus the small builders the backbones share.

Layers are plain ``nn.Conv2d`` / ``nn.BatchNorm2d`` (or ``nn.Identity`` when batch norm is off) /
activation modules inside ``nn.Sequential`` stages, so a Net2Net operator can walk conv -> bn -> act -> conv
chains and swap modules in place. ``config()`` reads widths and depths back from the live layers rather than
from the constructor arguments, so after in-place growth it still describes the network that exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from finegrain.errors import ConfigError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    # 0.1 is Darknet's slope; PyTorch's 0.01 default behaves almost like plain ReLU.
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "relu6": nn.ReLU6,
}
# How pixels are scaled before the first layer: ``fixed`` (the preprocessing's one mean and scale for every image)
# or ``image`` (each image to zero mean and unit variance: its overall brightness and contrast carry no signal).
INPUT_NORMS = ("fixed", "image")


def standardize_images(x: Tensor, eps: float = 1e-2) -> Tensor:
    """Each image of ``[B, C, H, W]`` to zero mean and unit standard deviation over all its pixels and channels.

    ``eps`` keeps a flat image finite (inputs are in [-1, 1], where a photo's deviation is about 0.3 to 0.7).
    """
    centred = x - x.mean(dim=(1, 2, 3), keepdim=True)
    return centred / (centred.square().mean(dim=(1, 2, 3), keepdim=True).sqrt() + eps)


@dataclass
class WidthGroup:
    """Channels that must be widened together, with every layer that writes or reads them.

    ``producers`` write the channels (a conv and its norm, ``nn.Identity`` without batch norm); more than one
    producer means their outputs are added (a residual stream), so they share one channel mapping.
    ``depthwise`` convs (and their norms) map each channel to itself; ``consumers`` read the channels. A group
    whose channels leave the backbone (the feature map) lists no consumer here: the head reads them.
    """

    producers: list[tuple[nn.Conv2d, nn.Module]]
    consumers: list[nn.Conv2d] = field(default_factory=list)
    depthwise: list[tuple[nn.Conv2d, nn.Module]] = field(default_factory=list)

    @property
    def width(self) -> int:
        return self.producers[0][0].out_channels


def chain_groups(module: nn.Module) -> list[WidthGroup]:
    """Width groups of a plain chain: every conv (in module order) feeds the next one."""
    pairs = conv_norm_pairs(module)
    return [
        WidthGroup([pair], [pairs[i + 1][0]] if i + 1 < len(pairs) else []) for i, pair in enumerate(pairs)
    ]


def conv_norm_pairs(module: nn.Module) -> list[tuple[nn.Conv2d, nn.Module]]:
    """(conv, the module after it) for every conv inside ``nn.Sequential`` containers, in order."""
    pairs = []
    for seq in module.modules():
        if isinstance(seq, nn.Sequential):
            children = list(seq)
            pairs += [(c, children[i + 1]) for i, c in enumerate(children) if isinstance(c, nn.Conv2d)]
    return pairs


class Backbone(nn.Module):
    """A feature extractor: images ``[B, 3, H, W]`` -> last spatial feature map ``[B, C, h, w]``.

    Subclasses build ``self.stages`` (an ``nn.Sequential``) and implement ``width_layers`` and
    ``_arch_config``. ``create_backbone(cfg["name"], **cfg)`` with ``cfg = backbone.config()`` rebuilds the
    same architecture, so the backbone's ``state_dict`` loads into it.
    """

    name: ClassVar[str] = ""  # set by register_backbone
    stages: nn.Sequential
    min_input_size: int = 32  # smallest H and W that still leave a 1x1 feature map
    # Feed the convs NHWC input: oneDNN's CPU kernels ran 1.2-2x faster on all four nets here (more for
    # depthwise convs). Only the input is converted; weights may stay NCHW, so layers a Net2Net operator
    # swaps in need no special care. A backbone where it does not pay can set this to False.
    channels_last: ClassVar[bool] = True
    # A fixed descriptor (lbp) has no convolutions: no widths, no Net2Net.
    growable: ClassVar[bool] = True
    # The --input-norm values a backbone takes; set on the instance by ``create_backbone`` (not a constructor
    # argument, so every backbone gets it in one place).
    input_norms: ClassVar[tuple[str, ...]] = INPUT_NORMS
    input_norm: str = "fixed"

    def forward_features(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if self.input_norm == "image":
            x = standardize_images(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.stages(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)

    def width_layers(self) -> list[nn.Conv2d]:
        """The convolutions whose ``out_channels`` are ``config()["widths"]``, in order.

        These are the layers a Net2Net widening may change; depthwise and shortcut convolutions follow
        from them and are not listed.
        """
        raise NotImplementedError

    def width_groups(self) -> list[WidthGroup]:
        """Every set of channels a Net2Net widening can grow, with the layers that write and read them."""
        raise NotImplementedError

    @property
    def deepen_sites(self) -> int:
        """How many places (stages) ``insert_unit`` accepts: ``site`` in ``range(deepen_sites)``."""
        raise NotImplementedError

    def insert_unit(self, site: int) -> nn.Module:
        """Append a freshly initialised unit that keeps its input width at the end of stage ``site``.

        Returns the new unit: a ``nn.Sequential`` chain of conv -> norm -> act triples (every conv maps C to C
        channels), or a residual block with ``residual_tail()`` -> (last conv, its norm) of the branch.
        Net2Net then makes it an identity. ``config()`` records the new depth, so a rebuilt backbone matches.
        """
        raise NotImplementedError

    def _arch_config(self) -> dict[str, Any]:
        """Everything except name and widths needed to rebuild (depths, activation, batch_norm...)."""
        raise NotImplementedError

    @property
    def num_features(self) -> int:
        # Read from the live last layer so in-place widening is reflected.
        return self.width_layers()[-1].out_channels

    def config(self) -> dict[str, Any]:
        widths = [conv.out_channels for conv in self.width_layers()]
        # input_norm only when it is not the default, so files written before it existed describe the same nets.
        norm = {"input_norm": self.input_norm} if self.input_norm != "fixed" else {}
        return {"name": self.name, "widths": widths, **self._arch_config(), **norm}

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ConfigError(f"{self.name}: expected images shaped [B, 3, H, W], got {list(x.shape)}")
        h, w = x.shape[-2:]
        if min(h, w) < self.min_input_size:
            raise ConfigError(
                f"{self.name}: image size {h}x{w} is too small; it needs at least "
                f"{self.min_input_size}x{self.min_input_size} (raise image_size)"
            )


# --- argument checking -------------------------------------------------------------------------------


def check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return activation


def make_activation(activation: str) -> nn.Module:
    return ACTIVATIONS[check_activation(activation)]()


def _is_positive_int(value: object) -> bool:
    # bool is an int subclass; True as a width is always a mistake.
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def resolve_depths(
    depths: Sequence[int] | None, default: Sequence[int], num_stages: int | None = None
) -> list[int]:
    """Validate ``depths`` (blocks per stage); ``num_stages`` pins the length when the topology needs it."""
    resolved = list(default if depths is None else depths)
    if not resolved or not all(_is_positive_int(d) for d in resolved):
        raise ConfigError(f"depths must be a non-empty list of positive ints, got {depths!r}")
    if num_stages is not None and len(resolved) != num_stages:
        raise ConfigError(f"depths must have {num_stages} entries (one per stage), got {len(resolved)}")
    return resolved


def check_width_multiplier(width_multiplier: object) -> float:
    is_number = isinstance(width_multiplier, (int, float)) and not isinstance(width_multiplier, bool)
    if not is_number or width_multiplier <= 0:
        raise ConfigError(f"width_multiplier must be a positive number, got {width_multiplier!r}")
    return float(width_multiplier)


def resolve_widths(
    widths: Sequence[int] | None,
    default: Sequence[int],
    width_multiplier: float,
) -> list[int]:
    """Explicit ``widths`` win; otherwise the default per-layer widths scaled by ``width_multiplier``.

    ``default`` must already have one entry per width layer: its length is the length ``widths`` must have.
    """
    width_multiplier = check_width_multiplier(width_multiplier)
    if widths is None:
        return [max(1, int(round(w * width_multiplier))) for w in default]
    if width_multiplier != 1.0:
        # Silently ignoring one of the two would rebuild a different network than the user asked for.
        raise ConfigError("pass either widths or width_multiplier, not both")
    resolved = list(widths)
    if len(resolved) != len(default):
        raise ConfigError(
            f"widths must have {len(default)} entries (one per width layer for these depths), "
            f"got {len(resolved)}"
        )
    if not all(_is_positive_int(w) for w in resolved):
        raise ConfigError(f"widths must be positive ints, got {resolved!r}")
    return resolved


def check_bool(value: object, param: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{param} must be true or false, got {value!r}")
    return value


# --- layer builders ----------------------------------------------------------------------------------


def conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    groups: int = 1,
    batch_norm: bool,
    activation: str | None,
) -> list[nn.Module]:
    """``[conv, bn-or-Identity, act]`` as a flat list, to splice into a stage's ``nn.Sequential``.

    The Identity placeholder keeps the conv/bn/act positions fixed whether or not batch norm is on.
    ``activation=None`` leaves the act out (linear bottlenecks).
    """
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=not batch_norm,  # a bias right before batch norm is cancelled by its mean subtraction
        ),
        nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity(),
    ]
    if activation is not None:
        layers.append(make_activation(activation))
    return layers


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convs (fan_in keeps activations stable in the nets without batch norm)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def check_site(site: int, sites: int) -> int:
    if isinstance(site, bool) or not isinstance(site, int) or not 0 <= site < sites:
        raise ConfigError(f"deepen site must be an int in [0, {sites}), got {site!r}")
    return site


def insert_before_pool(stage: nn.Sequential, unit: list[nn.Module]) -> None:
    """Put ``unit``'s modules at the end of ``stage`` but before a closing max-pool, as construction would."""
    at = len(stage) - 1 if len(stage) and isinstance(stage[-1], nn.MaxPool2d) else len(stage)
    modules = list(stage)
    modules[at:at] = unit
    for i, m in enumerate(modules):
        stage._modules[str(i)] = m  # rebuild the numbering in place: the parent keeps the same object


def count_convs(module: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in module.modules())
