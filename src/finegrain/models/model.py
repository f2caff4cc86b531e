"""Backbone + embedding head, the one factory that builds it, and its checkpoint format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from finegrain.errors import ConfigError, FinegrainError
from finegrain.models.backbone import Backbone
from finegrain.models.heads import EmbeddingHead, RegressionHead
from finegrain.models.registry import create_backbone

FORMAT = "finegrain-model"
VERSION = 1


class BackboneWithHead(nn.Module):
    """``head(backbone.forward_features(x))``; the head's ``fc`` must read the backbone's features.

    Net2Net grows such a model through ``backbone`` and ``head.fc``.
    """

    def __init__(self, backbone: Backbone, head: nn.Module) -> None:
        super().__init__()
        if head.fc.in_features != backbone.num_features:
            raise ConfigError(
                f"head in_features {head.fc.in_features} does not match the backbone's "
                f"num_features {backbone.num_features}"
            )
        self.backbone = backbone
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone.forward_features(x))


class EmbeddingModel(BackboneWithHead):
    """Images ``[B, 3, H, W]`` -> unit-norm embeddings ``[B, E]``."""

    head: EmbeddingHead

    @property
    def embedding_size(self) -> int:
        return self.head.embedding_size

    def embed(self, x: Tensor) -> Tensor:
        return self(x)

    def config(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone.config(),
            "head": self.head.config(),
            "embedding_size": self.embedding_size,
        }


class ScoringModel(BackboneWithHead):
    """Images ``[B, 3, H, W]`` -> one score per image ``[B]`` (regression against human ratings)."""

    head: RegressionHead

    def config(self) -> dict[str, Any]:
        return {"kind": "score", "backbone": self.backbone.config(), "head": self.head.config()}


def create_model(
    name: str, embedding_size: int = 128, pooling: str = "gem", dropout: float = 0.0, **backbone_kw: Any
) -> EmbeddingModel:
    """The one model factory: ``create_model("conv4", embedding_size=64, widths=[32, 32, 64, 64])``.

    Keywords other than the head's (embedding_size, pooling, dropout) go to the backbone.
    """
    backbone = create_backbone(name, **backbone_kw)
    head = EmbeddingHead(backbone.num_features, embedding_size, pooling=pooling, dropout=dropout)
    return EmbeddingModel(backbone, head)


def model_from_config(cfg: dict[str, Any]) -> EmbeddingModel | ScoringModel:
    """Rebuild the architecture a model's ``config()`` describes (weights are not part of it)."""
    if not isinstance(cfg, dict) or not all(isinstance(cfg.get(k), dict) for k in ("backbone", "head")):
        raise ConfigError("model config must be a dict with 'backbone' and 'head' dicts")
    backbone_cfg = dict(cfg["backbone"])
    if "name" not in backbone_cfg:
        raise ConfigError("model config: backbone config has no 'name'")
    backbone = create_backbone(backbone_cfg.pop("name"), **backbone_cfg)
    head_cfg = dict(cfg["head"])
    kind = cfg.get("kind", "embedding")
    if kind == "score":
        try:
            return ScoringModel(backbone, RegressionHead(**head_cfg))
        except TypeError as e:
            raise ConfigError(f"model config: bad head options: {e}") from e
    if kind != "embedding":
        raise ConfigError(f"model config: unknown model kind {kind!r}")
    in_features = head_cfg.pop("in_features", backbone.num_features)
    if in_features != backbone.num_features:
        raise ConfigError(
            f"model config: head in_features {in_features} != backbone num_features {backbone.num_features}"
        )
    embedding_size = head_cfg.setdefault("embedding_size", cfg.get("embedding_size", 128))
    if cfg.get("embedding_size", embedding_size) != embedding_size:
        raise ConfigError("model config: embedding_size disagrees with the head config")
    try:
        head = EmbeddingHead(backbone.num_features, **head_cfg)
    except TypeError as e:  # an unknown key: report it as a config problem, not a crash
        raise ConfigError(f"model config: bad head options: {e}") from e
    return EmbeddingModel(backbone, head)


def _check_plain(value: Any, where: str) -> None:
    """Reject what ``torch.load(weights_only=True)`` would refuse, at save time rather than load time."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: keys must be str, got {k!r}")
            _check_plain(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif value is not None and not isinstance(value, (str, int, float, bool, torch.Tensor)):
        raise ConfigError(f"{where}: {type(value).__name__} cannot be stored; use dicts, lists, numbers, str")


def save_model(
    model: EmbeddingModel | ScoringModel, path: str | os.PathLike[str], extra: dict[str, Any] | None = None
) -> None:
    """Write config + weights + ``extra`` to ``path`` atomically (a crash never leaves half a file there)."""
    path = Path(path)
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model.config(),
        # CPU copies, so a model saved from a GPU loads anywhere.
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_payload(path: str | os.PathLike[str], formats: tuple[str, ...] = (FORMAT,)) -> dict[str, Any]:
    """The raw dict of a model file (any of ``formats``), with clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FinegrainError(f"model file not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and weights_only errors all mean the same thing to the user
        raise FinegrainError(f"{path} is not a finegrain model file ({type(e).__name__})") from e
    if not isinstance(payload, dict) or payload.get("format") not in formats:
        raise FinegrainError(f"{path} is not a finegrain model file (no '{FORMAT}' marker)")
    if payload.get("version") != VERSION:
        version = payload.get("version")
        raise FinegrainError(f"{path}: model file version {version!r}; this finegrain reads {VERSION}")
    return payload


def model_from_payload(payload: dict[str, Any], where: str | os.PathLike[str]) -> EmbeddingModel | ScoringModel:
    """Rebuild the model of a ``save_model`` payload, in eval mode."""
    try:
        model = model_from_config(payload["model_config"])
        model.load_state_dict(payload["state_dict"])
    except (FinegrainError, KeyError, RuntimeError) as e:
        raise FinegrainError(f"{where}: cannot rebuild the model: {e}") from e
    return model.eval()


def load_model(path: str | os.PathLike[str]) -> tuple[EmbeddingModel | ScoringModel, dict[str, Any]]:
    """Rebuild a model written by ``save_model``; returns ``(model in eval mode, extra)``."""
    payload = read_payload(path)
    return model_from_payload(payload, path), dict(payload.get("extra") or {})


def update_extra(path: str | os.PathLike[str], formats: tuple[str, ...] = (FORMAT,), **items: Any) -> None:
    """Add or replace entries of a model file's ``extra`` (a threshold, a normaliser), atomically."""
    payload = read_payload(path, formats)
    payload["extra"] = {**(payload.get("extra") or {}), **items}
    _check_plain(payload["extra"], "extra")
    tmp = Path(path).with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
