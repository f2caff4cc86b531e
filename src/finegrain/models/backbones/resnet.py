"""A small ResNet of basic blocks for small images: a 3x3 stem (no 7x7 conv + maxpool), stride 2 between
stages, so four stages reduce H and W by 8 (a 64x64 image gives an 8x8 map)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from finegrain.errors import ConfigError
from finegrain.models.backbone import (
    Backbone,
    WidthGroup,
    check_activation,
    check_bool,
    check_site,
    conv_bn_act,
    init_weights,
    make_activation,
    resolve_depths,
    resolve_widths,
)
from finegrain.models.registry import register_backbone

_STAGE_WIDTHS = [32, 64, 128, 256]


class BasicBlock(nn.Module):
    """``act(bn2(conv2(act(bn1(conv1(x))))) + shortcut(x))``.

    ``conv1 -> bn1 -> act1 -> conv2`` is a plain chain (the block's inner width can grow on its own). The
    shortcut is a 1x1 conv + bn whenever the shape changes, and the identity otherwise.
    """

    def __init__(
        self, in_ch: int, mid_ch: int, out_ch: int, stride: int, batch_norm: bool, activation: str
    ) -> None:
        super().__init__()
        self.conv1, self.bn1, self.act1 = conv_bn_act(
            in_ch, mid_ch, 3, stride=stride, batch_norm=batch_norm, activation=activation
        )
        self.conv2, self.bn2 = conv_bn_act(mid_ch, out_ch, 3, batch_norm=batch_norm, activation=None)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                *conv_bn_act(in_ch, out_ch, 1, stride=stride, batch_norm=batch_norm, activation=None)
            )
        self.act2 = make_activation(activation)

    def residual_tail(self) -> tuple[nn.Conv2d, nn.Module]:
        return self.conv2, self.bn2

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + self.shortcut(x))


def _default_widths(depths: list[int]) -> list[int]:
    stage_widths = [_STAGE_WIDTHS[min(s, len(_STAGE_WIDTHS) - 1)] for s in range(len(depths))]
    widths = [stage_widths[0]]  # stem
    for width, depth in zip(stage_widths, depths):
        widths += [width, width] * depth
    return widths


@register_backbone("resnet")
class ResNet(Backbone):
    """``stages`` = ``[stem, stage0, stage1, ...]``; ``stem`` = ``Sequential(conv3x3, bn, act)``, each stage a
    ``Sequential`` of ``BasicBlock`` (the first one of every stage but stage0 has stride 2).

    ``widths`` lists ``[stem, (conv1, conv2) for every block]``: ``1 + 2 * sum(depths)`` entries. Defaults
    are stage widths 32, 64, 128, 256 with ``depths`` ``[1, 1, 1, 1]``.
    """

    def __init__(
        self,
        widths: Sequence[int] | None = None,
        depths: Sequence[int] | None = None,
        width_multiplier: float = 1.0,
        activation: str = "relu",
        batch_norm: bool = True,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        depths = resolve_depths(depths, [1, 1, 1, 1])
        if stem_stride not in (1, 2):
            raise ConfigError(f"resnet stem_stride must be 1 or 2, not {stem_stride!r}")
        self.stem_stride = stem_stride
        widths = resolve_widths(widths, _default_widths(depths), width_multiplier)
        self.activation = check_activation(activation)
        self.batch_norm = check_bool(batch_norm, "batch_norm")
        self.min_input_size = stem_stride * 2 ** (len(depths) - 1)

        # A stride-2 stem quarters the cost of every layer: 64 px faces train ~5x faster on a CPU.
        stem = nn.Sequential(
            *conv_bn_act(3, widths[0], 3, stride=stem_stride, batch_norm=batch_norm, activation=activation)
        )
        stages: list[nn.Module] = [stem]
        in_ch, i = widths[0], 1
        for s, depth in enumerate(depths):
            blocks = []
            for b in range(depth):
                stride = 2 if s > 0 and b == 0 else 1
                blocks.append(BasicBlock(in_ch, widths[i], widths[i + 1], stride, batch_norm, activation))
                in_ch, i = widths[i + 1], i + 2
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        init_weights(self)

    def width_layers(self) -> list[nn.Conv2d]:
        convs = [self.stages[0][0]]
        for stage in list(self.stages)[1:]:
            for block in stage:
                convs += [block.conv1, block.conv2]
        return convs

    def width_groups(self) -> list[WidthGroup]:
        # Blocks with an identity shortcut add their output to their input: those convs form one stream
        # that must widen together. A projection shortcut starts a new stream.
        stem = self.stages[0]
        stream = WidthGroup([(stem[0], stem[1])])
        groups = []
        for stage in list(self.stages)[1:]:
            for block in stage:
                groups.append(WidthGroup([(block.conv1, block.bn1)], [block.conv2]))
                stream.consumers.append(block.conv1)
                if isinstance(block.shortcut, nn.Sequential):
                    stream.consumers.append(block.shortcut[0])
                    groups.append(stream)
                    stream = WidthGroup([(block.conv2, block.bn2), (block.shortcut[0], block.shortcut[1])])
                else:
                    stream.producers.append((block.conv2, block.bn2))
        return [*groups, stream]

    @property
    def deepen_sites(self) -> int:
        return len(self.stages) - 1

    def insert_unit(self, site: int) -> nn.Module:
        stage = self.stages[1 + check_site(site, self.deepen_sites)]
        width = stage[-1].conv2.out_channels
        block = BasicBlock(width, width, width, 1, self.batch_norm, self.activation)
        stage.append(block)
        return block

    def _arch_config(self) -> dict[str, Any]:
        return {
            "depths": [len(stage) for stage in list(self.stages)[1:]],
            "activation": self.activation,
            "batch_norm": self.batch_norm,
            "stem_stride": self.stem_stride,
        }
