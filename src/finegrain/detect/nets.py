"""The cascade's six small networks, on grey windows of 12, 24 and 48 pixels.

Detection nets answer face / not face (2 logits); calibration nets answer which of the 45 displacement patterns
produced the window (45 logits). Inputs are grey pixel values in 0–255; each net centres and scales them
itself, so callers never need to know the normalisation.

The 12-net is written fully convolutionally (its "fully connected" layer is a 4×4 convolution), so the same
weights score one 12×12 window or every window of a whole image at stride 2 in one pass.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from finegrain.detect.calibration import NUM_PATTERNS

SIZES = (12, 24, 48)


STRIDE_12 = 2  # the 12-net's output cells are 2 input pixels apart


class _Normalise(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 127.5) / 64.0


class _WindowContrast(nn.Module):
    """Each window to zero mean and about unit contrast, so a dark, flat or washed-out face looks like a clear
    one (Viola–Jones normalise window variance for the same reason). The floor of 4 grey levels keeps a nearly
    uniform window from being blown up into noise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / (x.std(dim=(1, 2, 3), keepdim=True) + 4.0)


def _conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class Detect12(nn.Module):
    """conv 3×3 → max-pool 3/2 → "fc" (4×4 conv) → 2 logits; a 12×12 input gives a 1×1 output."""

    size = 12

    def __init__(self, channels: int = 16):
        super().__init__()
        self.body = nn.Sequential(
            _Normalise(), *_conv(1, channels, 3), nn.MaxPool2d(3, 2),
            nn.Conv2d(channels, channels, 4), nn.ReLU(inplace=True), nn.Conv2d(channels, 2, 1),
        )

    def score_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` → logits ``(N, 2, (H − 12)//2 + 1, (W − 12)//2 + 1)``: one cell per 12×12 window."""
        height, width = x.shape[-2:]
        # The receptive field is 11 pixels, so an image can yield one more cell than whole 12-pixel windows
        # fit; drop it so every cell is exactly one window.
        return self.body(x)[..., : (height - 12) // STRIDE_12 + 1, : (width - 12) // STRIDE_12 + 1]

    @torch.no_grad()
    def face_probability_map(self, x: torch.Tensor) -> torch.Tensor:
        """Face probability of every 12×12 window of ``(1, 1, H, W)``: the softmax of ``score_map``, computed
        with normalisation and batch norm folded into the first convolution, and channels-last pooling, which
        is several times faster on a CPU (the detector's hot loop)."""
        _, conv1, norm, _, _, conv2, _, conv3 = self.body
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        w1 = conv1.weight * (scale / 64.0)[:, None, None, None]
        b1 = (conv1.bias - 127.5 / 64.0 * conv1.weight.sum(dim=(1, 2, 3)) - norm.running_mean) * scale + norm.bias
        y = F.relu_(F.conv2d(x, w1, b1)).contiguous(memory_format=torch.channels_last)
        y = F.relu_(F.conv2d(F.max_pool2d(y, 3, 2), conv2.weight, conv2.bias))
        # softmax over two logits = sigmoid of their difference: one 1×1 convolution instead of two.
        margin = F.conv2d(y, conv3.weight[1:] - conv3.weight[:1], conv3.bias[1:] - conv3.bias[:1])
        height, width = x.shape[-2:]
        return torch.sigmoid(margin)[:, 0, : (height - 12) // STRIDE_12 + 1, : (width - 12) // STRIDE_12 + 1]

    def options(self) -> dict:
        return {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of 12×12 windows → ``(N, 2)`` logits."""
        if x.shape[-2:] != (12, 12):
            raise ValueError(f"Detect12 takes 12×12 windows (use score_map for images), got {tuple(x.shape[-2:])}")
        return self.body(x).flatten(1)


class _WindowNet(nn.Module):
    """Convolutional features → hidden layer → ``outputs`` logits, for fixed-size windows.

    ``window_contrast`` normalises each window by its own mean and contrast instead of fixed constants.
    """

    size: int

    def __init__(self, features: nn.Sequential, feature_dim: int, hidden: int, outputs: int,
                 window_contrast: bool = False):
        super().__init__()
        self.window_contrast = window_contrast
        self.features = nn.Sequential(_WindowContrast() if window_contrast else _Normalise(), *features)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True),
                                  nn.Dropout(0.3), nn.Linear(hidden, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"{type(self).__name__} takes {self.size}×{self.size} windows, got {tuple(x.shape[-2:])}")
        return self.head(self.features(x))

    def options(self) -> dict:
        """What a detector file must record to rebuild this net (beyond its weights)."""
        return {"window_contrast": self.window_contrast}


def _features_12(channels: int) -> tuple[nn.Sequential, int]:
    return nn.Sequential(*_conv(1, channels, 3), nn.MaxPool2d(3, 2)), channels * 4 * 4


def _features_24(channels: int) -> tuple[nn.Sequential, int]:
    # 24 → conv 20 → pool 9 → conv 7 → pool 3
    layers = [*_conv(1, channels, 5), nn.MaxPool2d(3, 2), *_conv(channels, channels, 3), nn.MaxPool2d(3, 2)]
    return nn.Sequential(*layers), channels * 3 * 3


def _features_48(channels: int) -> tuple[nn.Sequential, int]:
    # 48 → conv 44 → pool 21 → conv 19 → pool 9 → conv 7 → pool 3
    layers = [*_conv(1, channels // 2, 5), nn.MaxPool2d(3, 2), *_conv(channels // 2, channels, 3), nn.MaxPool2d(3, 2),
              *_conv(channels, channels, 3), nn.MaxPool2d(3, 2)]
    return nn.Sequential(*layers), channels * 3 * 3


class Calibrate12(_WindowNet):
    size = 12

    def __init__(self, channels: int = 16, hidden: int = 128, window_contrast: bool = False):
        super().__init__(*_features_12(channels), hidden, NUM_PATTERNS, window_contrast)


class Detect24(_WindowNet):
    size = 24

    def __init__(self, channels: int = 32, hidden: int = 128, window_contrast: bool = True):
        super().__init__(*_features_24(channels), hidden, 2, window_contrast)


class Calibrate24(_WindowNet):
    size = 24

    def __init__(self, channels: int = 32, hidden: int = 64, window_contrast: bool = False):
        super().__init__(*_features_24(channels), hidden, NUM_PATTERNS, window_contrast)


class Detect48(_WindowNet):
    size = 48

    def __init__(self, channels: int = 64, hidden: int = 256, window_contrast: bool = True):
        super().__init__(*_features_48(channels), hidden, 2, window_contrast)


class Calibrate48(_WindowNet):
    size = 48

    def __init__(self, channels: int = 64, hidden: int = 256, window_contrast: bool = False):
        super().__init__(*_features_48(channels), hidden, NUM_PATTERNS, window_contrast)


NETS: dict[str, type[nn.Module]] = {
    "detect12": Detect12, "calibrate12": Calibrate12,
    "detect24": Detect24, "calibrate24": Calibrate24,
    "detect48": Detect48, "calibrate48": Calibrate48,
}


def fold_batch_norm(net: nn.Module) -> nn.Module:
    """An inference copy of ``net`` with every convolution → batch-norm pair fused into one convolution.

    Same outputs in eval mode, about a quarter less time: batch norm is a separate pass over every activation.
    """
    fused = copy.deepcopy(net).eval()
    for module in fused.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                module[i + 1] = nn.Identity()
    return fused.to(memory_format=torch.channels_last)
