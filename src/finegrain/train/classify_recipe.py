"""Classification recipes: a linear or cosine softmax head trained end to end (then, for crt / tau-norm / auto,
the classifier re-balanced on its own), or ``--head knn``: an embedding trained by metric learning whose
training images become a 1-nearest-neighbour gallery stored in the model file.

The model file records ``classifier``: the class names (in logit order), the head, the imbalance method asked
for and what was applied, and the training images per class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from finegrain.config import TrainConfig
from finegrain.data import PreparedData
from finegrain.encoders import MODEL_FILE, SingleEncoder
from finegrain.models import ClassifierHead, ClassifierModel, save_model
from finegrain.train.build import build_backbone, build_embedding_model
from finegrain.train.classify_task import ClassifyTask
from finegrain.train.decouple import decouple, pooled_features
from finegrain.train.embed_task import EmbedTask
from finegrain.train.fit import fit, say

DECOUPLED = ("crt", "tau-norm", "auto")


def classifier_info(cfg: TrainConfig, train: PreparedData, **extra: object) -> dict:
    counts = np.bincount(train.labels, minlength=len(train.classes))
    return {"classes": list(train.classes), "head": cfg.head, "imbalance": cfg.imbalance,
            "train_counts": [int(c) for c in counts], **extra}


def train_classifier(cfg: TrainConfig, train: PreparedData, val: PreparedData | None, resume: bool, quiet: bool,
                     tensorboard: bool, deadline: float | None = None, epoch_hooks: list | None = None) -> list[dict]:
    run_dir = Path(cfg.out)
    lr_scale = cfg.backbone_lr_scale if cfg.init else 1.0
    if cfg.head == "knn":
        return _train_knn(cfg, train, val, resume, tensorboard, deadline, epoch_hooks, lr_scale, quiet)
    backbone = build_backbone(cfg)
    head = ClassifierHead(backbone.num_features, len(train.classes), kind=cfg.head, pooling=cfg.pooling)
    task = ClassifyTask(cfg, ClassifierModel(backbone, head), train, val, cfg.epochs)
    history = fit(task, cfg, run_dir, cfg.epochs, cfg.grow, resume, tensorboard, deadline=deadline,
                  epoch_hooks=epoch_hooks, backbone_lr_scale=lr_scale)
    model, applied = task.model.eval(), {"method": cfg.imbalance}
    if cfg.imbalance in DECOUPLED:
        model, applied = rebalance_classifier(task, cfg)
        shown = f" ({applied['rule']}: {applied.get('validation', '')})" if "rule" in applied else ""
        say(f"classifier: {applied['method']}{shown}", quiet)
    task.model = model
    info = classifier_info(cfg, train, applied=applied)
    if val is not None:
        info["validation"] = task.validate()
    save_model(model, run_dir / MODEL_FILE, task.preprocess.to_dict(), train_config=cfg.to_dict(), classifier=info,
               provenance={"num_train_classes": len(train.classes)})
    return history


def _batches(task: ClassifyTask, images: np.ndarray, flip: bool, size: int = 256) -> list[torch.Tensor]:
    out = [task.preprocess.to_tensor(images[i:i + size]) for i in range(0, len(images), size)]
    return out + ([x.flip(-1) for x in out] if flip else [])


def rebalance_classifier(task: ClassifyTask, cfg: TrainConfig) -> tuple[ClassifierModel, dict]:
    """Pooled features of the training images (and their mirror images when flips are allowed) and of the
    validation ones, then ``decouple``."""
    train_pooled = pooled_features(task.model, _batches(task, task.train_data.images.array(), cfg.flip))
    train_labels = np.tile(task.train_data.labels, 2 if cfg.flip else 1)
    val_pooled = val_labels = None
    if task.val_data is not None and len(task.val_positions):
        val_pooled = pooled_features(task.model, _batches(task, task.validation_images(), flip=False))
        val_labels = task.val_labels
    return decouple(task.model, cfg.imbalance, train_pooled, train_labels, val_pooled, val_labels, cfg.seed)


def _train_knn(cfg: TrainConfig, train: PreparedData, val: PreparedData | None, resume: bool, tensorboard: bool,
               deadline: float | None, epoch_hooks: list | None, lr_scale: float, quiet: bool) -> list[dict]:
    run_dir = Path(cfg.out)
    task = EmbedTask(cfg, build_embedding_model(cfg), train, val)
    history = fit(task, cfg, run_dir, cfg.epochs, cfg.grow, resume, tensorboard, deadline=deadline,
                  epoch_hooks=epoch_hooks, backbone_lr_scale=lr_scale)
    gallery = SingleEncoder(task.model, task.preprocess).encode_array(train.images.array())
    tensors = {"gallery.vectors": torch.from_numpy(gallery),
               "gallery.labels": torch.as_tensor(train.labels, dtype=torch.int64)}
    info = classifier_info(cfg, train, applied={"method": "none"})
    save_model(task.model, run_dir / MODEL_FILE, tensors=tensors, classifier=info, **task.model_manifest())
    say(f"classifier: 1-nearest-neighbour over {len(gallery)} training images", quiet)
    return history
