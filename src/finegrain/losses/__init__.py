"""Losses: metric objectives built from pytorch-metric-learning parts, and a margin curriculum."""

from finegrain.losses.curriculum import MarginCurriculum
from finegrain.losses.metric import LOSSES, MINERS, PROXY_LOSSES, MetricObjective, build_objective, default_margin

__all__ = ["LOSSES", "MINERS", "PROXY_LOSSES", "MarginCurriculum", "MetricObjective", "build_objective",
           "default_margin"]
