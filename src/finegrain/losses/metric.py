"""Metric-learning objectives, composed from pytorch-metric-learning parts by injection.

Every objective maps (embeddings, labels) to a scalar loss. The Siamese objective of the classic
set-up (L1 distance between the two embeddings, hinge embedding loss with a margin) is not a class
of its own: it is PML's ContrastiveLoss given an L1 distance and a plain mean reducer, which is the
same function (tested against ``torch.nn.HingeEmbeddingLoss``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from pytorch_metric_learning import distances, losses, miners, reducers

from finegrain.errors import ConfigError

LOSSES = ("contrastive", "siamese", "triplet", "arcface", "normsoftmax")
PROXY_LOSSES = ("arcface", "normsoftmax")  # losses with a learned vector per class
MINERS = ("batch-hard", "semi-hard", "all")


def default_margin(loss: str, embedding_size: int) -> float:
    """Margins that work without tuning for unit-length embeddings.

    The L1 distance between two random unit vectors in d dimensions is about sqrt(4d/pi), so the
    Siamese margin scales with it; the others live on the L2 / angular scale, which does not grow.
    """
    if loss == "siamese":
        return 0.5 * math.sqrt(4 * embedding_size / math.pi)
    return {"contrastive": 0.5, "triplet": 0.2, "arcface": 28.6, "normsoftmax": 0.0}[loss]


@dataclass
class MetricObjective:
    """A loss, an optional miner, and the margin knob a curriculum turns."""

    name: str
    loss: losses.BaseMetricLossFunction
    miner: miners.BaseMiner | None = None

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        indices = self.miner(embeddings, labels) if self.miner is not None else None
        return self.loss(embeddings, labels, indices)

    def parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters of the loss itself (ArcFace's class centres); they get their own group."""
        return list(self.loss.parameters())

    @property
    def margin(self) -> float:
        if self.name == "normsoftmax":
            return 0.0
        if self.name == "arcface":
            return math.degrees(self.loss.margin)
        if self.name in ("contrastive", "siamese"):
            return float(self.loss.neg_margin)
        return float(self.loss.margin)

    @margin.setter
    def margin(self, value: float) -> None:
        if self.name == "normsoftmax":
            raise ConfigError("--loss normsoftmax has no margin to set or schedule (--margin, --margin-start)")
        if self.name == "arcface":
            self.loss.margin = math.radians(value)  # ArcFaceLoss keeps radians internally
        elif self.name in ("contrastive", "siamese"):
            self.loss.neg_margin = value
        else:
            self.loss.margin = value
            if isinstance(self.miner, miners.TripletMarginMiner):
                self.miner.margin = value  # semi-hard is defined relative to the loss margin


def build_objective(
    loss: str,
    embedding_size: int,
    num_classes: int | None = None,
    margin: float | None = None,
    miner: str = "semi-hard",
    scale: float | None = None,
) -> MetricObjective:
    """The one factory for metric objectives; errors name the flag at fault."""
    if loss not in LOSSES:
        raise ConfigError(f"--loss must be one of {', '.join(LOSSES)}, not {loss!r}")
    m = default_margin(loss, embedding_size) if margin is None else float(margin)
    if m < 0:
        raise ConfigError(f"--margin must be non-negative, not {m}")
    if loss == "contrastive":
        return MetricObjective(loss, losses.ContrastiveLoss(pos_margin=0.0, neg_margin=m))
    if loss == "siamese":
        # The head already puts embeddings on the unit L2 sphere; PML would renormalise with the L1 norm.
        l1 = distances.LpDistance(p=1, normalize_embeddings=False)
        return MetricObjective(
            loss, losses.ContrastiveLoss(pos_margin=0.0, neg_margin=m, distance=l1, reducer=reducers.MeanReducer())
        )
    if loss == "triplet":
        if miner not in MINERS:
            raise ConfigError(f"--miner must be one of {', '.join(MINERS)}, not {miner!r}")
        mined = {
            "batch-hard": miners.BatchHardMiner(),
            "semi-hard": miners.TripletMarginMiner(margin=m, type_of_triplets="semihard"),
            "all": None,
        }[miner]
        return MetricObjective(loss, losses.TripletMarginLoss(margin=m), mined)
    if not num_classes or num_classes < 2:
        raise ConfigError(f"--loss {loss} needs a labelled training set with at least 2 classes")
    if loss == "normsoftmax":
        if margin:
            raise ConfigError("--loss normsoftmax has no margin; drop --margin")
        # Softmax over cosine similarities to one learned proxy per class, at temperature 1/scale (Zhai & Wu,
        # "Classification is a strong baseline for deep metric learning", 2019).
        return MetricObjective(loss, losses.NormalizedSoftmaxLoss(num_classes=num_classes,
                                                                  embedding_size=embedding_size,
                                                                  temperature=1.0 / (scale or 20.0)))
    return MetricObjective(
        loss, losses.ArcFaceLoss(num_classes=num_classes, embedding_size=embedding_size, margin=m, scale=scale or 64.0)
    )
