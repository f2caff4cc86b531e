"""Tiny Darknet (the Darknet reference "tiny" ImageNet net), without its 1000-way classifier conv.

Darknet topology: conv3x3(16) pool, conv3x3(32) pool, then groups of [1x1 squeeze, 3x3 expand] pairs:
2x(16/128) pool, 2x(32/256) pool, 2x(64/512), then a 1x1 conv to 128. Four 2x2 max-pools in all, so a
64x64 image gives a 4x4 map and 16x16 is the smallest input. Defaults follow our small-data use: ELU and no
batch norm (the original uses leaky ReLU + batch norm; both are options).
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

_STEM = [16, 32]
_FINAL = 128


def _default_widths(depths: list[int]) -> list[int]:
    # Group g squeezes to 16 * 2**g and expands to 128 * 2**g, as in the reference cfg.
    widths = list(_STEM)
    for g, depth in enumerate(depths):
        widths += [16 * 2**g, 128 * 2**g] * depth
    return widths + [_FINAL]


@register_backbone("tiny_darknet")
class TinyDarknet(Backbone):
    """``stages`` = ``[stem0, stem1, group0, ..., groupN, final]``, each an ``nn.Sequential``.

    ``widths`` lists every conv in order: ``[stem0, stem1, (squeeze, expand) * sum(depths), final]``;
    default ``[16, 32, 16, 128, 16, 128, 32, 256, 32, 256, 64, 512, 64, 512, 128]``. ``depths`` counts
    squeeze/expand pairs per group, default ``[2, 2, 2]``. Every group but the last ends in a 2x2 max-pool.
    """

    def __init__(
        self,
        widths: Sequence[int] | None = None,
        depths: Sequence[int] | None = None,
        width_multiplier: float = 1.0,
        activation: str = "elu",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        depths = resolve_depths(depths, [2, 2, 2])
        widths = resolve_widths(widths, _default_widths(depths), width_multiplier)
        self.activation = check_activation(activation)
        self.batch_norm = check_bool(batch_norm, "batch_norm")
        self.min_input_size = 2 ** (len(_STEM) + len(depths) - 1)

        def unit(cin: int, cout: int, k: int) -> list[nn.Module]:
            return conv_bn_act(cin, cout, k, batch_norm=batch_norm, activation=activation)

        stages: list[nn.Module] = []
        in_ch, i = 3, 0
        for _ in _STEM:
            stages.append(nn.Sequential(*unit(in_ch, widths[i], 3), nn.MaxPool2d(2)))
            in_ch, i = widths[i], i + 1
        for g, depth in enumerate(depths):
            group: list[nn.Module] = []
            for _ in range(depth):
                group += unit(in_ch, widths[i], 1) + unit(widths[i], widths[i + 1], 3)
                in_ch, i = widths[i + 1], i + 2
            if g < len(depths) - 1:
                group.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*group))
        stages.append(nn.Sequential(*unit(in_ch, widths[i], 1)))
        self.stages = nn.Sequential(*stages)
        init_weights(self)

    def width_layers(self) -> list[nn.Conv2d]:
        return [m for m in self.stages.modules() if isinstance(m, nn.Conv2d)]

    def width_groups(self) -> list[WidthGroup]:
        return chain_groups(self.stages)

    @property
    def deepen_sites(self) -> int:
        return len(self.stages) - len(_STEM) - 1  # the squeeze/expand groups

    def insert_unit(self, site: int) -> nn.Module:
        """A squeeze/expand pair whose squeeze keeps the full width (a narrower one could not be identity)."""
        group = self.stages[len(_STEM) + check_site(site, self.deepen_sites)]
        width = [m for m in group if isinstance(m, nn.Conv2d)][-1].out_channels
        unit = [
            *conv_bn_act(width, width, 1, batch_norm=self.batch_norm, activation=self.activation),
            *conv_bn_act(width, width, 3, batch_norm=self.batch_norm, activation=self.activation),
        ]
        insert_before_pool(group, unit)
        return nn.Sequential(*unit)

    def _arch_config(self) -> dict[str, Any]:
        groups = list(self.stages)[len(_STEM) : -1]
        return {
            "depths": [count_convs(group) // 2 for group in groups],
            "activation": self.activation,
            "batch_norm": self.batch_norm,
        }
