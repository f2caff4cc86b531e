"""Local binary patterns: a fixed texture descriptor, with nothing to learn below the embedding head.

Each pixel of the grey image gets an 8-bit code (is each of its 8 neighbours at least as bright?);
codes with at most two 0/1 transitions around the circle are the 58 "uniform" patterns, the rest share a
59th bin. Histograms of the codes over a grid of ``cell``-pixel cells, at each scale in ``scales``, are
concatenated and square-rooted (the Hellinger map, so a Euclidean/cosine distance compares
distributions sensibly). The feature map is that vector as ``[B, F, 1, 1]``; the embedding head learns
a linear projection of it.

Why it is here: with a few thousand images and a CPU, a convolutional net cannot see enough faces to
learn what a learned descriptor needs, while LBP histograms describe faces well with no training at
all (Ahonen et al. 2006). It is also a second, very different view for a meta-embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finegrain.errors import ConfigError
from finegrain.models.backbone import Backbone
from finegrain.models.registry import register_backbone

_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
BINS = 59


def uniform_table() -> Tensor:
    """Map every 8-bit code to its uniform-pattern bin (0..57), or 58 for a non-uniform code."""
    table = torch.full((256,), BINS - 1, dtype=torch.long)
    uniform = [v for v in range(256) if sum(((v >> i) & 1) != ((v >> ((i + 1) % 8)) & 1) for i in range(8)) <= 2]
    table[uniform] = torch.arange(len(uniform))
    return table


def lbp_codes(grey: Tensor, radius: int = 1) -> Tensor:
    """``[B, H, W]`` grey → ``[B, H-2r, W-2r]`` 8-bit codes (border pixels have no full neighbourhood).

    The 8 neighbours lie on the square at chessboard distance ``radius`` (corners and edge midpoints), so
    a larger radius compares coarser structure with no interpolation.
    """
    h, w, r = *grey.shape[-2:], radius
    centre = grey[:, r : h - r, r : w - r]
    codes = torch.zeros_like(centre, dtype=torch.long)
    for bit, (dy, dx) in enumerate(_NEIGHBOURS):
        codes |= (grey[:, r + r * dy : h - r + r * dy, r + r * dx : w - r + r * dx] >= centre).long() << bit
    return codes


def lbp_histograms(grey: Tensor, table: Tensor, cell: int, radius: int = 1) -> Tensor:
    """Uniform-pattern histograms (fractions) over a grid of whole cell×cell cells: ``[B, cells * 59]``.

    One ``bincount`` over (image, cell, bin) indices: no one-hot tensor, so memory stays at the codes.
    """
    bins = table[lbp_codes(grey, radius)]
    b, h, w = bins.shape
    gh, gw = h // cell, w // cell
    bins = bins[:, : gh * cell, : gw * cell]
    cell_of = (torch.arange(gh * cell, device=grey.device) // cell)[:, None] * gw + (
        torch.arange(gw * cell, device=grey.device) // cell)[None, :]
    index = (torch.arange(b, device=grey.device)[:, None, None] * (gh * gw) + cell_of) * BINS + bins
    counts = torch.bincount(index.flatten(), minlength=b * gh * gw * BINS)
    return counts.view(b, gh * gw * BINS).float() / (cell * cell)


@register_backbone("lbp")
class LBP(Backbone):
    """Multi-scale uniform LBP histograms; ``image_size`` fixes the grid (``image_size // cell`` cells a side).

    Not growable by Net2Net: there is no convolution to widen or deepen.
    """

    channels_last = False
    growable = False
    input_norms = ("fixed",)  # its binary patterns already ignore brightness and contrast

    def __init__(self, image_size: int = 80, cell: int = 10, scales: Sequence[float] = (1.0, 0.75),
                 radius: int = 1, width_multiplier: float = 1.0) -> None:
        super().__init__()
        if width_multiplier != 1.0:
            raise ConfigError("lbp has no widths to scale: leave --width at 1")
        if (cell < 4 or radius < 1 or not scales or min(scales) <= 0 or image_size < 2 * cell
                or round(image_size * min(scales)) - 2 * radius < cell):
            raise ConfigError(f"lbp: need cell >= 4, radius >= 1, image_size >= 2 * cell, positive scales and a "
                              f"whole cell at the smallest scale (got cell {cell}, radius {radius}, "
                              f"image_size {image_size}, scales {list(scales)})")
        self.image_size, self.cell, self.scales = int(image_size), int(cell), tuple(float(s) for s in scales)
        self.radius = int(radius)
        self.register_buffer("table", uniform_table(), persistent=False)
        self.register_buffer("grey_weights", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False)
        self.stages = nn.Sequential()
        self.min_input_size = 2 * cell
        sizes = [round(self.image_size * s) for s in self.scales]
        self._num_features = BINS * sum(((s - 2 * self.radius) // self.cell) ** 2 for s in sizes)

    @property
    def num_features(self) -> int:
        return self._num_features

    def forward_features(self, x: Tensor) -> Tensor:
        self._check_input(x)
        grey = (x * self.grey_weights).sum(1, keepdim=True)
        parts = []
        for s in self.scales:
            size = round(self.image_size * s)
            g = grey if grey.shape[-1] == size and grey.shape[-2] == size else F.interpolate(
                grey, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            parts.append(lbp_histograms(g[:, 0], self.table, self.cell, self.radius))
        return torch.cat(parts, dim=1).sqrt()[:, :, None, None]

    def width_layers(self) -> list[nn.Conv2d]:
        raise ConfigError("lbp has no convolutions: Net2Net cannot grow it")

    def width_groups(self):
        raise ConfigError("lbp has no convolutions: Net2Net cannot grow it")

    @property
    def deepen_sites(self) -> int:
        return 0

    def insert_unit(self, site: int) -> nn.Module:
        raise ConfigError("lbp has no convolutions: Net2Net cannot grow it")

    def _arch_config(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "cell": self.cell, "scales": list(self.scales), "radius": self.radius}

    def config(self) -> dict[str, Any]:
        return {"name": self.name, **self._arch_config()}
