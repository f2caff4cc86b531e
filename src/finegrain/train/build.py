"""Models built from a training configuration."""

from __future__ import annotations

from finegrain.config import TrainConfig
from finegrain.models import EmbeddingModel, create_model


def backbone_kwargs(cfg: TrainConfig) -> dict:
    """Backbone options from the config; unset ones are left to the backbone's own defaults."""
    kw: dict = {"width_multiplier": cfg.width}
    if cfg.activation is not None:
        kw["activation"] = cfg.activation
    if cfg.batch_norm is not None:
        kw["batch_norm"] = cfg.batch_norm
    if cfg.backbone == "lbp":  # its histogram grid is laid out for the training image size
        kw["image_size"] = cfg.image_size
    if cfg.stem_stride is not None:
        kw["stem_stride"] = cfg.stem_stride
    if cfg.lbp_radius is not None:
        kw["radius"] = cfg.lbp_radius
    if cfg.lbp_cell is not None:
        kw["cell"] = cfg.lbp_cell
    return kw


def build_embedding_model(cfg: TrainConfig) -> EmbeddingModel:
    return create_model(cfg.backbone, embedding_size=cfg.embedding_size, pooling=cfg.pooling, **backbone_kwargs(cfg))
