"""Net2Net (Chen, Goodfellow & Shlens, 2016): grow a trained network without changing what it computes.

``widen`` gives every width group more channels by copying existing ones (a random mapping) and dividing the
weights that read a copied channel by its number of copies, so the next layer's sum is unchanged. ``deepen``
inserts a unit initialised to the identity. Both work on any registered backbone through its contract
(``width_groups``, ``insert_unit``) and on any model with ``.backbone`` and a head whose ``fc`` reads the
pooled features. Average and GeM pooling are per-channel, so copied channels pool to copied values and the
division stays exact across the conv -> linear boundary.

Symmetry breaking: with ``noise > 0`` the copies of a channel get different reading weights, with noise that
sums to zero over each channel's copies, so the function is still preserved while the copies' gradients
differ from the first step on. (Random noise added to the copies themselves would break exactness; this
zero-sum variant keeps it.)

Exactness of ``deepen``: a chain unit (conv -> norm -> act with an identity conv) is exact when the
activation satisfies act(act(x)) = act(x) (ReLU, ReLU6; not ELU or leaky ReLU, whose negative part is
changed again) and, with batch norm, in eval mode (the new norm's running statistics are identity; in train
mode it normalises the batch until it learns otherwise). A residual unit whose branch ends in zeros is exact
for any activation in MobileNetV2 (no activation after the sum) and for ReLU in ResNet.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from finegrain.errors import ConfigError
from finegrain.models.backbone import Backbone, WidthGroup
from finegrain.models.registry import create_backbone

GROWTH_OPS = ("widen", "deepen")


def _set_param(module: nn.Module, name: str, value: Tensor) -> None:
    setattr(module, name, nn.Parameter(value.contiguous(), requires_grad=getattr(module, name).requires_grad))


def _copy_norm(norm: nn.Module, mapping: Tensor) -> None:
    if isinstance(norm, nn.BatchNorm2d):
        for name in ("weight", "bias"):
            if getattr(norm, name) is not None:
                _set_param(norm, name, getattr(norm, name).detach()[mapping])
        for name in ("running_mean", "running_var"):
            if getattr(norm, name) is not None:
                setattr(norm, name, getattr(norm, name)[mapping].clone())
        norm.num_features = len(mapping)
    elif not isinstance(norm, nn.Identity):
        raise ConfigError(f"net2net: cannot widen a {type(norm).__name__} after a conv")


def _split_columns(weight: Tensor, mapping: Tensor, counts: Tensor, noise: float, gen: torch.Generator) -> Tensor:
    """Columns ``mapping`` of ``weight`` (dim 1) divided by their copy counts, plus zero-sum noise per copy set."""
    scale = counts[mapping].to(weight.dtype)
    shape = [1, -1] + [1] * (weight.dim() - 2)
    new = weight[:, mapping] / scale.view(shape)
    if noise > 0:
        eps = torch.randn(new.shape, generator=gen, dtype=torch.float64).to(weight.dtype) * noise * weight.std()
        # Subtract each copy set's mean so the copies' noise sums to zero: the layer's sum is unchanged.
        mean = torch.zeros((weight.shape[0], weight.shape[1], *weight.shape[2:]), dtype=weight.dtype)
        mean.index_add_(1, mapping, eps)
        eps = eps - (mean / counts.to(weight.dtype).view(shape))[:, mapping]
        new = new + eps
    return new


@torch.no_grad()
def widen_group(
    group: WidthGroup,
    new_width: int,
    head_inputs: Sequence[nn.Linear] = (),
    noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> None:
    """Grow ``group`` to ``new_width`` channels in place; ``head_inputs`` are linear layers reading them."""
    old = group.width
    if new_width <= old:
        raise ConfigError(f"net2net: new width {new_width} must exceed the current width {old}")
    gen = generator or torch.Generator().manual_seed(0)
    mapping = torch.cat([torch.arange(old), torch.randint(old, (new_width - old,), generator=gen)])
    counts = torch.bincount(mapping, minlength=old)
    for conv, norm in group.producers + group.depthwise:
        _set_param(conv, "weight", conv.weight.detach()[mapping])
        if conv.bias is not None:
            _set_param(conv, "bias", conv.bias.detach()[mapping])
        conv.out_channels = new_width
        _copy_norm(norm, mapping)
    for conv, _ in group.depthwise:
        conv.in_channels = conv.groups = new_width
    for layer in [*group.consumers, *head_inputs]:
        if isinstance(layer, nn.Conv2d) and layer.groups != 1:
            raise ConfigError("net2net: a grouped conv can only widen as a depthwise layer of its group")
        _set_param(layer, "weight", _split_columns(layer.weight.detach(), mapping, counts, noise, gen))
        if isinstance(layer, nn.Conv2d):
            layer.in_channels = new_width
        else:
            layer.in_features = new_width


def _head_input(model: nn.Module) -> nn.Linear:
    fc = getattr(getattr(model, "head", None), "fc", None)
    if not isinstance(fc, nn.Linear):
        raise ConfigError("net2net: the model needs a head whose 'fc' linear layer reads the pooled features")
    return fc


def _backbone(model: nn.Module) -> Backbone:
    backbone = getattr(model, "backbone", model)
    if not isinstance(backbone, Backbone):
        raise ConfigError(f"net2net: {type(model).__name__} has no registered backbone to grow")
    return backbone


def widen(model: nn.Module, factor: float = 2.0, noise: float = 0.0, seed: int = 0) -> str:
    """Multiply every width group of the backbone by ``factor`` (at least one channel more each)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1:
        raise ConfigError(f"net2net: widen factor must be a number above 1, got {factor!r}")
    if noise < 0:
        raise ConfigError(f"net2net: noise must be 0 or more, got {noise!r}")
    backbone = _backbone(model)
    gen = torch.Generator().manual_seed(seed)
    before = backbone.config()["widths"]
    for group in backbone.width_groups():
        head_inputs = [_head_input(model)] if not group.consumers and model is not backbone else []
        width = group.width
        widen_group(group, max(width + 1, int(round(width * factor))), head_inputs, noise, gen)
    check_rebuildable(backbone)
    after = backbone.config()["widths"]
    return f"net2net widen x{factor:g}: {sum(before)} -> {sum(after)} channels"


@torch.no_grad()
def make_identity(unit: nn.Module) -> None:
    """Initialise a unit from ``Backbone.insert_unit`` so that it passes its input through (see module doc)."""
    if hasattr(unit, "residual_tail"):
        conv, norm = unit.residual_tail()
        # Zeroing the branch's last scale makes the branch output 0; gradients still reach it.
        target = norm if isinstance(norm, nn.BatchNorm2d) else conv
        target.weight.zero_()
        if target.bias is not None:
            target.bias.zero_()
        return
    layers = list(unit)
    for i, layer in enumerate(layers):
        if not isinstance(layer, nn.Conv2d):
            continue
        if layer.in_channels != layer.out_channels or layer.groups != 1:
            raise ConfigError("net2net: an identity conv needs as many output channels as inputs")
        nn.init.dirac_(layer.weight)
        if layer.bias is not None:
            layer.bias.zero_()
        norm = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(norm, nn.BatchNorm2d):
            norm.weight.fill_(1.0)
            norm.bias.zero_()
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)  # (x - 0) / sqrt(var + eps) == x


def deepen(model: nn.Module, site: int | None = None) -> str:
    """Insert one identity unit at the end of stage ``site`` (default: the deepest stage)."""
    backbone = _backbone(model)
    site = backbone.deepen_sites - 1 if site is None else site
    ref = next(backbone.parameters())
    unit = backbone.insert_unit(site).to(device=ref.device, dtype=ref.dtype)
    make_identity(unit)
    unit.train(backbone.training)
    check_rebuildable(backbone)
    return f"net2net deepen stage {site}: depths {backbone.config()['depths']}"


def check_rebuildable(backbone: Backbone) -> None:
    """The grown backbone's ``config()`` must rebuild the same layers, or a saved model could not load."""
    cfg = backbone.config()
    rebuilt = create_backbone(cfg.pop("name"), **cfg)
    have = {k: tuple(v.shape) for k, v in backbone.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if have != want:
        diff = sorted(set(have.items()) ^ set(want.items()))[:3]
        raise ConfigError(
            f"net2net: the grown {backbone.name} cannot be rebuilt from its config (the growth changed its "
            f"topology, e.g. where residual shortcuts go): {diff}"
        )


def parse_growth(spec: str) -> list[tuple[str, float | None]]:
    """``"deepen,widen:1.5,deepen:2"`` -> ``[("deepen", None), ("widen", 1.5), ("deepen", 2)]``.

    ``widen`` alone doubles; ``deepen`` alone deepens the last stage, ``deepen:i`` stage i.
    """
    ops: list[tuple[str, float | None]] = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, arg = item.partition(":")
        if name not in GROWTH_OPS:
            raise ConfigError(f"--grow: unknown step {item!r}; use {' or '.join(GROWTH_OPS)}[:value]")
        try:
            value = float(arg) if arg else None
        except ValueError:
            raise ConfigError(f"--grow: {item!r} needs a number after ':'") from None
        if name == "widen" and value is not None and value <= 1:
            raise ConfigError(f"--grow: widen factor must be above 1, got {item!r}")
        if name == "deepen" and value is not None and (value != int(value) or value < 0):
            raise ConfigError(f"--grow: deepen takes a stage index, got {item!r}")
        ops.append((name, value))
    return ops


def apply_growth(model: nn.Module, op: tuple[str, float | None], noise: float = 0.0, seed: int = 0) -> str:
    name, value = op
    if name == "widen":
        return widen(model, 2.0 if value is None else value, noise=noise, seed=seed)
    return deepen(model, None if value is None else int(value))
