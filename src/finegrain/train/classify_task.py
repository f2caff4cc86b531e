"""The classification task: augmented images (optionally mixed) -> class logits -> a long-tail-aware loss.

Validation (images held out from every class, stratified) is monitored by mean per-class accuracy, so the
epoch kept is the one best on the rare classes too, not the one best on the frequent ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from finegrain.config import TrainConfig
from finegrain.data import ImageDataset, PreparedData, build_augmentation
from finegrain.eval.classification import classification_metrics
from finegrain.losses.imbalance import BalancedSoftmaxLoss, LDAMLoss, class_balanced_cross_entropy
from finegrain.losses.mixing import mix_batch
from finegrain.models import ClassifierModel, model_from_config
from finegrain.train.loaders import image_loader

Criterion = Callable[[Tensor, Tensor], Tensor]
# LDAM re-weights its classes from this share of the epochs on (the paper: epoch 160 of 200).
DRW_START = 0.8


def build_criterion(imbalance: str, counts: np.ndarray, label_smoothing: float, head_scale: float,
                    epochs: int) -> tuple[Criterion, nn.Module | None]:
    """The training loss of ``--imbalance`` (and its module when it keeps state, such as LDAM's epoch).

    The decoupled methods (crt, tau-norm, auto) train the representation with plain cross-entropy; they act
    after training, on the classifier alone.
    """
    counts_list = [int(c) for c in counts]
    if imbalance == "class-balanced":
        return (lambda logits, y: class_balanced_cross_entropy(logits, y, counts_list)), None
    if imbalance == "balanced-softmax":
        loss = BalancedSoftmaxLoss(counts_list)
        return loss, loss
    if imbalance == "ldam-drw":
        ldam = LDAMLoss(counts_list, scale=head_scale, defer_epoch=int(DRW_START * epochs))
        # The cosine head's logits are scale · cosine; LDAM puts its margins on the cosines and scales itself.
        return (lambda logits, y: ldam(logits / head_scale, y)), ldam
    return (lambda logits, y: F.cross_entropy(logits, y, label_smoothing=label_smoothing)), None


def in_train_classes(train: PreparedData, val: PreparedData) -> tuple[np.ndarray, np.ndarray]:
    """Validation positions whose class is a training class, and their labels in the training numbering."""
    index = {name: i for i, name in enumerate(train.classes)}
    mapped = np.asarray([index.get(val.classes[label], -1) for label in val.labels], dtype=np.int64)
    keep = np.flatnonzero(mapped >= 0)
    return keep, mapped[keep]


class ClassifyTask:
    def __init__(self, cfg: TrainConfig, model: ClassifierModel, train: PreparedData, val: PreparedData | None,
                 epochs: int):
        self.cfg, self.model, self.train_data, self.val_data = cfg, model, train, val
        self.preprocess = cfg.preprocess()
        self.counts = np.bincount(train.labels, minlength=len(train.classes))
        self.dataset = ImageDataset(
            train.images, train.labels, transform=build_augmentation(cfg.augment, cfg.image_size, flip=cfg.flip),
            mean=self.preprocess.mean, std=self.preprocess.std,
        )
        self.criterion, self.loss_state = build_criterion(cfg.imbalance, self.counts, cfg.label_smoothing,
                                                          model.head.scale, epochs)
        if val is not None:
            self.val_positions, self.val_labels = in_train_classes(train, val)
        self.monitor = ("val_mean_per_class_accuracy", "max") if val is not None else ("train_loss", "min")

    @property
    def batch_size(self) -> int:
        return self.cfg.batch_size or self.cfg.p * self.cfg.k

    def steps_per_epoch(self) -> int:
        return self.cfg.steps_per_epoch or max(1, len(self.dataset) // self.batch_size)

    def make_loader(self, epoch: int, seed: int) -> DataLoader:
        return image_loader(self.dataset, self.cfg, self.batch_size, self.steps_per_epoch() * self.batch_size, seed)

    def loss(self, batch: Any) -> Tensor:
        images, labels = batch
        mixed = mix_batch(images, labels, self.cfg.mixup, self.cfg.cutmix)
        if mixed is None:
            return self.criterion(self.model.logits(images), labels)
        return mixed.loss(self.criterion, self.model.logits(mixed.images))

    def loss_parameters(self) -> list[nn.Parameter]:
        return []

    def on_epoch_start(self, epoch: int, epochs: int) -> dict[str, float]:
        if isinstance(self.loss_state, LDAMLoss):
            self.loss_state.set_epoch(epoch)
        return {}

    @torch.inference_mode()
    def probabilities(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        """Class probabilities of uint8 images (already at the input size), the model in eval mode."""
        self.model.eval()
        out = [torch.softmax(self.model.logits(self.preprocess.to_tensor(images[i:i + batch])), dim=1)
               for i in range(0, len(images), batch)]
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.counts)), np.float32)

    def validation_images(self) -> np.ndarray:
        return self.val_data.images.array()[self.val_positions]

    def validate(self) -> dict[str, float]:
        if self.val_data is None or not len(self.val_positions):
            return {}
        return classification_metrics(self.probabilities(self.validation_images()), self.val_labels)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def restore_model(self, model_config: dict, state: dict) -> None:
        self.model = model_from_config(model_config)
        self.model.load_state_dict(state)
