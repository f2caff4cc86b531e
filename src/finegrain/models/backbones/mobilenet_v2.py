"""MobileNetV2-style backbone with a stage list cut down for small images.

Stem conv3x3 stride 2, then five stages of inverted residual blocks (expansion t, width c, blocks n,
stride s): (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 2), (6, 96, 2, 1), then a 1x1 conv to
384. Output stride 16: a 64x64 image gives a 4x4 map. The ImageNet net's 160/320 stages and 1280-wide head
are dropped: on small inputs they would work on 1x1 maps and mostly add parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from finegrain.models.backbone import (
    Backbone,
    WidthGroup,
    check_activation,
    check_bool,
    check_site,
    check_width_multiplier,
    conv_bn_act,
    init_weights,
    resolve_depths,
    resolve_widths,
)
from finegrain.models.registry import register_backbone

_STEM, _HEAD = 32, 384
# (expansion, out width, stride); the block counts are the default depths.
_STAGES = [(1, 16, 1), (6, 24, 2), (6, 32, 2), (6, 64, 2), (6, 96, 1)]
_DEPTHS = [1, 2, 3, 2, 2]


class InvertedResidual(nn.Module):
    """``conv`` = ``Sequential(1x1 expand, bn, act, 3x3 depthwise, bn, act, 1x1 project, bn)``.

    The projection is linear (no activation): the MobileNetV2 linear bottleneck. The input is added back
    when stride is 1 and the widths match. Unlike the original, blocks with expansion 1 keep their expand
    conv, so every block has the same layout and two entries in ``widths``.
    """

    def __init__(
        self, in_ch: int, hidden: int, out_ch: int, stride: int, batch_norm: bool, activation: str
    ) -> None:
        super().__init__()
        self.use_residual = stride == 1 and in_ch == out_ch
        self.conv = nn.Sequential(
            *conv_bn_act(in_ch, hidden, 1, batch_norm=batch_norm, activation=activation),
            *conv_bn_act(
                hidden, hidden, 3, stride=stride, groups=hidden, batch_norm=batch_norm, activation=activation
            ),
            *conv_bn_act(hidden, out_ch, 1, batch_norm=batch_norm, activation=None),
        )

    def residual_tail(self) -> tuple[nn.Conv2d, nn.Module]:
        return self.conv[6], self.conv[7]

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


def _default_widths(depths: list[int], width_multiplier: float) -> list[int]:
    # Scale the stage widths first (to multiples of 8, as MobileNet does), then expand from the scaled
    # input width, so hidden widths stay exact multiples of the block's input.
    def scaled(w: int) -> int:
        return max(8, int(round(w * width_multiplier / 8)) * 8)

    widths = [scaled(_STEM)]
    in_ch = widths[0]
    for (t, c, _), depth in zip(_STAGES, depths):
        for _ in range(depth):
            widths += [in_ch * t, scaled(c)]
            in_ch = scaled(c)
    # The head keeps at least its full width, as in MobileNetV2, so narrow nets keep a rich embedding input.
    return widths + [max(_HEAD, scaled(_HEAD))]


@register_backbone("mobilenet_v2")
class MobileNetV2(Backbone):
    """``stages`` = ``[stem, stage0, ..., stage4, head]``; stem and head are ``Sequential(conv, bn, act)``.

    ``widths`` lists ``[stem, (expand, project) for every block, head]``; ``depths`` has 5 entries
    (blocks per stage), default ``[1, 2, 3, 2, 2]``. Default activation ReLU6.
    """

    def __init__(
        self,
        widths: Sequence[int] | None = None,
        depths: Sequence[int] | None = None,
        width_multiplier: float = 1.0,
        activation: str = "relu6",
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        depths = resolve_depths(depths, _DEPTHS, num_stages=len(_STAGES))
        if widths is None:
            widths = _default_widths(depths, check_width_multiplier(width_multiplier))
        else:
            widths = resolve_widths(widths, _default_widths(depths, 1.0), width_multiplier)
        self.activation = check_activation(activation)
        self.batch_norm = check_bool(batch_norm, "batch_norm")
        self.min_input_size = 2 * 2 ** sum(s == 2 for _, _, s in _STAGES)

        def unit(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
            return conv_bn_act(cin, cout, k, stride=stride, batch_norm=batch_norm, activation=activation)

        stages: list[nn.Module] = [nn.Sequential(*unit(3, widths[0], 3, stride=2))]
        in_ch, i = widths[0], 1
        for (_, _, stride), depth in zip(_STAGES, depths):
            blocks = []
            for b in range(depth):
                s = stride if b == 0 else 1
                block = InvertedResidual(in_ch, widths[i], widths[i + 1], s, batch_norm, activation)
                blocks.append(block)
                in_ch, i = widths[i + 1], i + 2
            stages.append(nn.Sequential(*blocks))
        stages.append(nn.Sequential(*unit(in_ch, widths[i], 1)))
        self.stages = nn.Sequential(*stages)
        init_weights(self)

    def width_layers(self) -> list[nn.Conv2d]:
        convs = [self.stages[0][0]]
        for stage in list(self.stages)[1:-1]:
            for block in stage:
                convs += [block.conv[0], block.conv[6]]
        return convs + [self.stages[-1][0]]

    def width_groups(self) -> list[WidthGroup]:
        # Residual blocks add their projection to their input: those projections share the input's stream.
        stem, head = self.stages[0], self.stages[-1]
        stream = WidthGroup([(stem[0], stem[1])])
        groups = []
        for stage in list(self.stages)[1:-1]:
            for block in stage:
                c = block.conv
                groups.append(WidthGroup([(c[0], c[1])], [c[6]], depthwise=[(c[3], c[4])]))
                stream.consumers.append(c[0])
                if block.use_residual:
                    stream.producers.append((c[6], c[7]))
                else:
                    groups.append(stream)
                    stream = WidthGroup([(c[6], c[7])])
        stream.consumers.append(head[0])
        return [*groups, stream, WidthGroup([(head[0], head[1])])]

    @property
    def deepen_sites(self) -> int:
        return len(self.stages) - 2

    def insert_unit(self, site: int) -> nn.Module:
        site = check_site(site, self.deepen_sites)
        stage = self.stages[1 + site]
        width = stage[-1].conv[6].out_channels
        block = InvertedResidual(width, width * _STAGES[site][0], width, 1, self.batch_norm, self.activation)
        stage.append(block)
        return block

    def _arch_config(self) -> dict[str, Any]:
        return {
            "depths": [len(stage) for stage in list(self.stages)[1:-1]],
            "activation": self.activation,
            "batch_norm": self.batch_norm,
        }
