"""The regression task: images -> one score each, Huber loss, optionally class-balanced over score bins."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from finegrain.config import TrainConfig
from finegrain.data import (
    BalancedBinSampler,
    ImageDataset,
    PreparedData,
    bin_scores,
    build_augmentation,
)
from finegrain.encoders import SingleEncoder
from finegrain.eval.regression import pearson_standard_error, regression_metrics
from finegrain.models import ScoringModel, model_from_config
from finegrain.train.loaders import image_loader


class ScoreTask:
    def __init__(self, cfg: TrainConfig, model: ScoringModel, train: PreparedData, val: PreparedData | None):
        self.cfg, self.model, self.train_data, self.val_data = cfg, model, train, val
        self.preprocess = cfg.preprocess()
        self.dataset = ImageDataset(
            train.images, train.scores.astype(np.float32),
            transform=build_augmentation(cfg.augment, cfg.image_size, flip=cfg.flip),
            mean=self.preprocess.mean, std=self.preprocess.std,
        )
        self.bins = bin_scores(train.scores, cfg.bin_width)
        self.criterion = nn.HuberLoss(delta=cfg.huber_delta)
        self.monitor = ("val_pearson", "max") if val is not None else ("train_loss", "min")

    @property
    def batch_size(self) -> int:
        return self.cfg.batch_size or self.cfg.p * self.cfg.k

    def steps_per_epoch(self) -> int:
        return self.cfg.steps_per_epoch or max(1, len(self.dataset) // self.batch_size)

    def make_loader(self, epoch: int, seed: int) -> DataLoader:
        draws = self.steps_per_epoch() * self.batch_size
        sampler = BalancedBinSampler(self.bins, draws, seed=seed) if self.cfg.balance else None
        return image_loader(self.dataset, self.cfg, self.batch_size, draws, seed, sampler)

    def loss(self, batch: Any) -> torch.Tensor:
        images, scores = batch
        return self.criterion(self.model(images), scores)

    def loss_parameters(self) -> list[nn.Parameter]:
        return []

    def on_epoch_start(self, epoch: int, epochs: int) -> dict[str, float]:
        return {}

    def validate(self) -> dict[str, float]:
        if self.val_data is None:
            return {}
        # The trainer puts the model back in train mode at the start of every epoch.
        predicted = SingleEncoder(self.model, self.preprocess).encode_array(self.val_data.images.array())
        metrics = regression_metrics(predicted, self.val_data.scores)
        # The trainer counts epochs within one standard error of the best as ties (``BestEpoch.update``).
        metrics["pearson_se"] = pearson_standard_error(metrics["pearson"], len(predicted))
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def restore_model(self, model_config: dict, state: dict) -> None:
        self.model = model_from_config(model_config)
        self.model.load_state_dict(state)

    def choose_tta(self) -> tuple[list[str], dict[str, float]]:
        """The model's default test-time augmentation, chosen on the validation split by a rule fixed before
        any test: mirror-averaged scores (``flip``) when their validation Pearson is higher than the plain
        scores' (a tie keeps none). Never with ``--no-flip`` or without a validation split."""
        if self.val_data is None or not self.cfg.flip:
            return [], {}
        images = self.val_data.images.array()
        # Rounded before the comparison, so the stored figures show the decision (a smaller gap is noise).
        pearson = {
            name: round(regression_metrics(SingleEncoder(self.model, self.preprocess, tta=tta).encode_array(images),
                                           self.val_data.scores)["pearson"], 4)
            for name, tta in (("none", ()), ("flip", ("flip",)))
        }
        return (["flip"] if pearson["flip"] > pearson["none"] else []), pearson

    def model_manifest(self) -> dict[str, Any]:
        """What a saved model needs to be used without the training flags (``save_model``'s fields)."""
        tta, pearson = self.choose_tta()
        provenance: dict[str, Any] = {
            "score_range": [float(self.train_data.scores.min()), float(self.train_data.scores.max())]}
        if pearson:
            provenance["tta_choice"] = {"rule": "flip when its validation Pearson is higher",
                                        "val_pearson": pearson}
        return {
            "preprocessing": self.preprocess.to_dict(),
            "train_config": self.cfg.to_dict(),
            "tta": tta,
            "provenance": provenance,
        }
