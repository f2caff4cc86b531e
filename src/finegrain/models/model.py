"""Backbone + head (embedding or regression), the one factory that builds it, and its model file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from finegrain.artifact import read_artifact, write_artifact
from finegrain.errors import ConfigError, FinegrainError
from finegrain.models.backbone import Backbone
from finegrain.models.classifier import ClassifierHead
from finegrain.models.heads import EmbeddingHead, RegressionHead
from finegrain.models.registry import create_backbone


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


class ClassifierModel(BackboneWithHead):
    """Images -> unit-norm pooled features (``forward``, an embedding) or class logits (``logits``)."""

    head: ClassifierHead

    @property
    def embedding_size(self) -> int:
        return self.head.embedding_size

    def logits(self, x: Tensor) -> Tensor:
        return self.head.logits(self.backbone.forward_features(x))

    def config(self) -> dict[str, Any]:
        return {"kind": "classifier", "backbone": self.backbone.config(), "head": self.head.config()}


def create_model(
    name: str, embedding_size: int = 128, pooling: str = "gem", dropout: float = 0.0, **backbone_kw: Any
) -> EmbeddingModel:
    """The one model factory: ``create_model("conv4", embedding_size=64, widths=[32, 32, 64, 64])``.

    Keywords other than the head's (embedding_size, pooling, dropout) go to the backbone.
    """
    backbone = create_backbone(name, **backbone_kw)
    head = EmbeddingHead(backbone.num_features, embedding_size, pooling=pooling, dropout=dropout)
    return EmbeddingModel(backbone, head)


def model_from_config(cfg: dict[str, Any]) -> EmbeddingModel | ScoringModel | ClassifierModel:
    """Rebuild the architecture a model's ``config()`` describes (weights are not part of it)."""
    if not isinstance(cfg, dict) or not all(isinstance(cfg.get(k), dict) for k in ("backbone", "head")):
        raise ConfigError("model config must be a dict with 'backbone' and 'head' dicts")
    backbone_cfg = dict(cfg["backbone"])
    if "name" not in backbone_cfg:
        raise ConfigError("model config: backbone config has no 'name'")
    backbone = create_backbone(backbone_cfg.pop("name"), **backbone_cfg)
    head_cfg = dict(cfg["head"])
    kind = cfg.get("kind", "embedding")
    if kind in ("score", "classifier"):
        model_class, head_class = {"score": (ScoringModel, RegressionHead),
                                   "classifier": (ClassifierModel, ClassifierHead)}[kind]
        try:
            return model_class(backbone, head_class(**head_cfg))
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


def model_kind(model: nn.Module) -> str:
    """The artifact kind of a model: ``score`` for a ScoringModel, ``embedding`` otherwise (a classifier's file
    is an embedding model's too: its pooled features are its embedding)."""
    return "score" if isinstance(model, ScoringModel) else "embedding"


def save_model(model: EmbeddingModel | ScoringModel | ClassifierModel, path: str | os.PathLike[str],
               preprocessing: dict[str, Any], tensors: dict[str, Tensor] | None = None, **fields: Any) -> Path:
    """Write the model as an artifact (atomically): weights under ``model.``, its architecture and
    ``preprocessing`` in the manifest, plus any other manifest ``fields`` (thresholds, train_config, ...) and
    ``tensors`` (named outside ``model.``, such as a 1-NN classifier's gallery)."""
    manifest = {"kind": model_kind(model), "architecture": model.config(), "preprocessing": dict(preprocessing),
                "normalizer": None, "thresholds": {}, "tta": [], **fields}
    weights = {f"model.{k}": v for k, v in model.state_dict().items()}
    return write_artifact(path, manifest, weights | dict(tensors or {}))


def model_from_manifest(manifest: dict[str, Any], state: dict[str, Tensor],
                        where: str | os.PathLike[str]) -> EmbeddingModel | ScoringModel:
    """Rebuild a model from its manifest's architecture and its weights, in eval mode."""
    try:
        model = model_from_config(manifest["architecture"])
        model.load_state_dict(state)
    except (FinegrainError, KeyError, RuntimeError) as e:
        raise FinegrainError(f"{where}: cannot rebuild the model: {e}") from e
    return model.eval()


def load_model(path: str | os.PathLike[str]) -> tuple[EmbeddingModel | ScoringModel, dict[str, Any]]:
    """The network of a model file written by ``save_model``: ``(model in eval mode, manifest)``."""
    artifact = read_artifact(path, kinds=("embedding", "score"))
    return model_from_manifest(artifact.manifest, artifact.sub("model"), path), artifact.manifest
