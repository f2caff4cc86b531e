"""Models built from a training configuration: fresh, or starting from another model's backbone (--init)."""

from __future__ import annotations

from finegrain.config import TrainConfig
from finegrain.encoders import resolve_model_path
from finegrain.models import Backbone, EmbeddingModel, create_backbone, load_model
from finegrain.models.heads import EmbeddingHead


def build_backbone(cfg: TrainConfig) -> Backbone:
    """A fresh backbone from the flags, or the ``--init`` model's backbone with its weights."""
    if cfg.init is None:
        return create_backbone(cfg.backbone, **cfg.backbone_kwargs())
    source, _ = load_model(resolve_model_path(cfg.init))
    return source.backbone.train()


def build_embedding_model(cfg: TrainConfig) -> EmbeddingModel:
    backbone = build_backbone(cfg)
    return EmbeddingModel(backbone, EmbeddingHead(backbone.num_features, cfg.embedding_size, pooling=cfg.pooling))
