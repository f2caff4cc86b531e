"""Backbones, embedding heads and the embedding model: ``create_model("conv4")`` is the entry point."""

from finegrain.models import backbones as _backbones  # noqa: F401  (registers the backbones)
from finegrain.models.backbone import Backbone
from finegrain.models.classifier import ClassifierHead
from finegrain.models.heads import EmbeddingHead, GeM, RegressionHead
from finegrain.models.model import (
    ClassifierModel,
    EmbeddingModel,
    ScoringModel,
    create_model,
    load_model,
    model_from_config,
    save_model,
)
from finegrain.models.registry import create_backbone, list_backbones, register_backbone

__all__ = [
    "Backbone",
    "ClassifierHead",
    "ClassifierModel",
    "EmbeddingHead",
    "EmbeddingModel",
    "GeM",
    "RegressionHead",
    "ScoringModel",
    "create_backbone",
    "create_model",
    "list_backbones",
    "load_model",
    "model_from_config",
    "register_backbone",
    "save_model",
]
