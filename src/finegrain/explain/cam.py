"""Grad-CAM explanations: which regions made two images similar, or made a score high.

Grad-CAM (Selvaraju et al., 2017) on the backbone's last feature map ``A`` (``[1, C, h, w]``): each channel
is weighted by the spatial mean of d(target)/dA_c, and the map is ``ReLU(sum_c w_c * A_c)``, upsampled
bilinearly to the image and scaled to [0, 1]. The target is the cosine similarity of two embeddings
(``similarity_cam``) or a scoring model's score (``score_cam``). The model's weights are never changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finegrain.drawing import text_bar
from finegrain.errors import ConfigError
from finegrain.utils import atomic_write


def grad_cam(features: Tensor, grads: Tensor, size: Sequence[int]) -> Tensor:
    """One image's map from its feature map and d(target)/d(features), both ``[1, C, h, w]``.

    Returns an ``H×W`` float tensor in [0, 1] (``size = (H, W)``); a map with no positive evidence stays zero.
    """
    weights = grads.detach().mean(dim=(-2, -1), keepdim=True)
    cam = F.relu((weights * features.detach()).sum(dim=1, keepdim=True)).float()
    cam = F.interpolate(cam, size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False)[0, 0]
    peak = cam.max()
    if not torch.isfinite(peak) or peak <= 0:
        return torch.zeros_like(cam).cpu()
    return (cam / peak).clamp_(0.0, 1.0).cpu()


def _spatial(features: Tensor) -> Tensor:
    if features.shape[-2:] == (1, 1) or not features.requires_grad:
        raise ConfigError("this model's feature map is 1x1 or fixed (a global descriptor such as lbp): "
                          "there are no regions to tell apart")
    return features


@contextmanager
def _explaining(model: nn.Module) -> Iterator[None]:
    """Eval mode with gradients on (even inside no_grad / inference_mode); the previous mode comes back."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        model.train(was_training)


def _prepare(model: nn.Module, image: Tensor, name: str) -> Tensor:
    if not isinstance(image, Tensor) or image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        shape = list(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ConfigError(f"{name}: expected one image shaped [1, 3, H, W], got {shape}")
    param = next(model.parameters())
    # A clone is an ordinary tensor even when the caller made it under inference_mode.
    return image.detach().to(device=param.device, dtype=param.dtype).clone()


def similarity_cam(model: nn.Module, image_a: Tensor, image_b: Tensor) -> tuple[Tensor, Tensor, float]:
    """Where each of two images holds what made their embeddings similar.

    ``model`` is an embedding model (``model.head(model.backbone.forward_features(x))`` -> ``[1, E]``);
    images are normalised ``[1, 3, H, W]`` tensors (``Preprocess.to_tensor``). Returns
    ``(cam_a [H_a×W_a], cam_b [H_b×W_b], cosine similarity)``, the maps in [0, 1] on the CPU.
    """
    with _explaining(model):
        xa, xb = _prepare(model, image_a, "image_a"), _prepare(model, image_b, "image_b")
        fa, fb = _spatial(model.backbone.forward_features(xa)), _spatial(model.backbone.forward_features(xb))
        ea, eb = model.head(fa), model.head(fb)
        if ea.dim() != 2:
            raise ConfigError("similarity maps need an embedding model; use score_cam for a scoring model")
        target = F.cosine_similarity(ea, eb, dim=1)[0]
        ga, gb = torch.autograd.grad(target, (fa, fb))
    return grad_cam(fa, ga, xa.shape[-2:]), grad_cam(fb, gb, xb.shape[-2:]), float(target.detach())


def score_cam(model: nn.Module, image: Tensor) -> tuple[Tensor, float]:
    """Where an image holds what made a scoring model's score high: ``(cam [H×W] in [0, 1], score)``."""
    with _explaining(model):
        x = _prepare(model, image, "image")
        features = _spatial(model.backbone.forward_features(x))
        out = model.head(features)
        if out.dim() != 1 or out.numel() != 1:
            raise ConfigError("score maps need a scoring model (one score per image); use similarity_cam")
        target = out[0]
        (grads,) = torch.autograd.grad(target, (features,))
    return grad_cam(features, grads, x.shape[-2:]), float(target.detach())


def overlay(image: np.ndarray, cam: Tensor | np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``image`` (uint8 H×W×3 RGB) blended with ``cam`` (values in [0, 1], resized to fit) in the JET colours."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ConfigError("overlay: image must be uint8 H×W×3 RGB")
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"overlay: alpha must be in [0, 1], got {alpha!r}")
    heat = cam.detach().cpu().numpy() if isinstance(cam, Tensor) else np.asarray(cam)
    heat = np.ascontiguousarray(heat, dtype=np.float32)
    if heat.shape != image.shape[:2]:
        heat = cv2.resize(heat, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    levels = np.clip(np.nan_to_num(heat) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    colour = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(np.ascontiguousarray(image), 1.0 - alpha, colour, alpha, 0.0)


def explanation_figure(
    images: Sequence[np.ndarray],
    cams: Sequence[Tensor | np.ndarray],
    title: str,
    alpha: float = 0.5,
    height: int = 256,
) -> np.ndarray:
    """One uint8 RGB figure: a title bar above the overlaid images side by side, each ``height`` pixels tall.

    Each image keeps its aspect ratio; its map (computed on the squashed square the model saw) is stretched
    back over it, which puts every cell where it came from.
    """
    if not images or len(images) != len(cams):
        raise ConfigError(f"explanation_figure: need one map per image, got {len(images)} images, {len(cams)} maps")
    gap = np.full((height, 4, 3), 255, np.uint8)
    panels: list[np.ndarray] = []
    for image, cam in zip(images, cams):
        h, w = image.shape[:2]
        width = max(1, round(w * height / h))
        shrink = height < h
        shown = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        panels += [gap, overlay(shown, cam, alpha)] if panels else [overlay(shown, cam, alpha)]
    body = np.concatenate(panels, axis=1)
    return np.concatenate([text_bar(title, body.shape[1], 32), body], axis=0)


def explanation_png(
    path: str | Path,
    images: Sequence[np.ndarray],
    cams: Sequence[Tensor | np.ndarray],
    title: str,
    alpha: float = 0.5,
    height: int = 256,
) -> Path:
    """Write ``explanation_figure(...)`` to ``path`` as a PNG, atomically; returns the path."""
    path = Path(path)
    figure = explanation_figure(images, cams, title, alpha=alpha, height=height)
    ok, data = cv2.imencode(".png", cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ConfigError(f"{path}: could not encode the figure as PNG")
    atomic_write(path, lambda tmp: tmp.write_bytes(data.tobytes()))
    return path
