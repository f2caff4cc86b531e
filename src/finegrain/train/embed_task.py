"""The metric-learning task: P×K batches of augmented images → embeddings → a metric loss."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from finegrain.config import TrainConfig
from finegrain.data import ImageDataset, PKSampler, PreparedData, build_augmentation, worker_init_fn
from finegrain.encoders import SingleEncoder
from finegrain.eval.retrieval import retrieval_metrics
from finegrain.eval.verification import validation_threshold
from finegrain.losses import MarginCurriculum, build_objective
from finegrain.models import EmbeddingModel, model_from_config


class EmbedTask:
    def __init__(self, cfg: TrainConfig, model: EmbeddingModel, train: PreparedData, val: PreparedData | None):
        self.cfg, self.model, self.train_data, self.val_data = cfg, model, train, val
        self.preprocess = cfg.preprocess()
        self.objective = build_objective(
            cfg.loss, cfg.embedding_size, num_classes=len(train.classes), margin=cfg.margin,
            miner=cfg.miner, scale=cfg.scale,
        )
        self.curriculum = (
            MarginCurriculum(cfg.margin_start, self.objective.margin) if cfg.margin_start is not None else None
        )
        self.dataset = ImageDataset(
            train.images, train.labels, transform=build_augmentation(cfg.augment, cfg.image_size, flip=cfg.flip),
            mean=self.preprocess.mean, std=self.preprocess.std,
        )
        self.monitor = ("val_map_at_r", "max") if val is not None else ("train_loss", "min")

    def steps_per_epoch(self) -> int:
        batch = self.cfg.p * self.cfg.k
        return self.cfg.steps_per_epoch or max(1, len(self.dataset) // batch)

    def make_loader(self, epoch: int, seed: int) -> DataLoader:
        cfg = self.cfg
        batch = cfg.p * cfg.k
        sampler = PKSampler(self.train_data.labels, p=cfg.p, k=cfg.k,
                            length_before_new_iter=self.steps_per_epoch() * batch, seed=seed)
        if cfg.workers == 0:
            self.dataset.reseed(seed)
        return DataLoader(
            self.dataset, batch_size=batch, sampler=sampler, num_workers=cfg.workers, drop_last=True,
            generator=torch.Generator().manual_seed(seed), worker_init_fn=worker_init_fn,
            persistent_workers=False,
        )

    def loss(self, batch: Any) -> torch.Tensor:
        images, labels = batch
        return self.objective(self.model(images), labels)

    def loss_parameters(self) -> list[torch.nn.Parameter]:
        return self.objective.parameters()

    def on_epoch_start(self, epoch: int, epochs: int) -> dict[str, float]:
        if self.curriculum is None:
            return {}
        return {"margin": self.curriculum.apply(self.objective, epoch, epochs)}

    def validate(self) -> dict[str, float]:
        if self.val_data is None:
            return {}
        emb = SingleEncoder(self.model, self.preprocess).encode_array(self.val_data.images.array())
        m = retrieval_metrics(emb, self.val_data.labels)
        return {"precision_at_1": m["precision_at_1"], "map_at_r": m["map_at_r"]}

    def state_dict(self) -> dict[str, Any]:
        return {"loss": self.objective.loss.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.objective.loss.load_state_dict(state["loss"])

    def restore_model(self, model_config: dict, state: dict) -> None:
        self.model = model_from_config(model_config)
        self.model.load_state_dict(state)

    def model_manifest(self) -> dict[str, Any]:
        """What a saved model needs to be used without the training flags (``save_model``'s fields)."""
        manifest: dict[str, Any] = {
            "preprocessing": self.preprocess.to_dict(),
            "train_config": self.cfg.to_dict(),
            "provenance": {"num_train_classes": int(len(np.unique(self.train_data.labels)))},
            "thresholds": {},
        }
        if self.val_data is not None and len(self.val_data.records) >= 2:
            emb = SingleEncoder(self.model, self.preprocess).encode_array(self.val_data.images.array())
            calibrated = validation_threshold(emb, np.asarray(self.val_data.labels), seed=self.cfg.seed)
            if calibrated is not None:  # so `finegrain verify RUN A B` works straight after training
                manifest["thresholds"]["verification"] = {**calibrated, "tta": [], "normalizer": None}
        return manifest
