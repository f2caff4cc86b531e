"""Conv-4: the standard few-shot backbone (four blocks of conv3x3 -> BN -> ReLU -> maxpool2).

On 28x28 Omniglot the output is ``[B, 64, 1, 1]``. ``depths`` > 1 stacks extra conv -> bn -> act units in a
block before its pool; that is where Net2Net deepening inserts identity layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from finegrain.models.backbone import (
    Backbone,
    WidthGroup,
    chain_groups,
    check_activation,
    check_bool,
    check_site,
    conv_bn_act,
    count_convs,
    init_weights,
    insert_before_pool,
    resolve_depths,
    resolve_widths,
)
from finegrain.models.registry import register_backbone


@register_backbone("conv4")
class Conv4(Backbone):
    """``stages[i]`` = ``Sequential(conv, bn, act, [conv, bn, act]..., MaxPool2d(2))``.

    ``widths`` has one entry per conv (``sum(depths)`` entries), default ``[64, 64, 64, 64]``.
    """

    def __init__(
        self,
        widths: Sequence[int] | None = None,
        depths: Sequence[int] | None = None,
        width_multiplier: float = 1.0,
        activation: str = "relu",
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        depths = resolve_depths(depths, [1, 1, 1, 1])
        widths = resolve_widths(widths, [64] * sum(depths), width_multiplier)
        self.activation = check_activation(activation)
        self.batch_norm = check_bool(batch_norm, "batch_norm")
        # Every block halves H and W (floor); below 2**blocks the map would vanish.
        self.min_input_size = 2 ** len(depths)

        stages: list[nn.Module] = []
        in_ch, layer = 3, 0
        for depth in depths:
            block: list[nn.Module] = []
            for _ in range(depth):
                block += conv_bn_act(in_ch, widths[layer], 3, batch_norm=batch_norm, activation=activation)
                in_ch, layer = widths[layer], layer + 1
            block.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*block))
        self.stages = nn.Sequential(*stages)
        init_weights(self)

    def width_layers(self) -> list[nn.Conv2d]:
        return [m for m in self.stages.modules() if isinstance(m, nn.Conv2d)]

    def width_groups(self) -> list[WidthGroup]:
        return chain_groups(self.stages)

    @property
    def deepen_sites(self) -> int:
        return len(self.stages)

    def insert_unit(self, site: int) -> nn.Module:
        block = self.stages[check_site(site, self.deepen_sites)]
        width = [m for m in block if isinstance(m, nn.Conv2d)][-1].out_channels
        unit = conv_bn_act(width, width, 3, batch_norm=self.batch_norm, activation=self.activation)
        insert_before_pool(block, unit)
        return nn.Sequential(*unit)

    def _arch_config(self) -> dict[str, Any]:
        return {
            "depths": [count_convs(block) for block in self.stages],
            "activation": self.activation,
            "batch_norm": self.batch_norm,
        }
