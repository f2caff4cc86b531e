"""The settings ``--time-budget`` searches: a small space of choices proven on the benchmarks, per task.

Each choice is a named preset of training flags, so a trial's parameters read as words in ``search.jsonl``
and any trial can be replayed with plain ``finegrain train`` flags. The defaults are a point of the space
(the search's first trial), so the search only has to beat them on validation, never to rediscover them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from finegrain.config import TrainConfig

# Backbones that train at ≥ 300 images/s at 64 px on 2 CPU cores (bench/defaults.py measures them).
BACKBONES: dict[str, dict[str, Any]] = {
    "conv4-pyramid": {"backbone": "conv4", "widths": "16,32,64,128", "width": None},
    "conv4-24": {"backbone": "conv4", "widths": "24,48,96,192", "width": None},  # the scoring default
    "conv4-0.5": {"backbone": "conv4", "width": 0.5},
    "tiny_darknet-0.5": {"backbone": "tiny_darknet", "width": 0.5},
    "resnet-s2-0.5": {"backbone": "resnet", "stem_stride": 2, "width": 0.5},
    "mobilenet_v2": {"backbone": "mobilenet_v2", "width": 1.0},
}
OBJECTIVES: dict[str, dict[str, Any]] = {
    "triplet-semi-hard": {"loss": "triplet", "miner": "semi-hard"},
    "triplet-batch-hard": {"loss": "triplet", "miner": "batch-hard"},
    "contrastive": {"loss": "contrastive", "miner": "all"},
    "arcface": {"loss": "arcface", "miner": "all"},
}
# Each recipe with its own defaults (config.py): a trial that switches recipe must not keep the other's resolved
# sampling or head dropout.
RECIPES: dict[str, dict[str, Any]] = {
    "direct": {"recipe": "direct", "balance": False, "head_dropout": 0.0},
    "staged": {"recipe": "staged", "widen": 1.0, "grow": "", "balance": True, "head_dropout": 0.5},
    "staged-widen": {"recipe": "staged", "widen": 2.0, "grow": "", "balance": True, "head_dropout": 0.5},
}
CHOICES: dict[str, dict[str, list]] = {
    # conv4-24 is the scoring default's backbone; the embedding space stays as it was measured.
    "embed": {"backbone": [name for name in BACKBONES if name != "conv4-24"], "image_size": [48, 64, 96],
              "objective": list(OBJECTIVES), "augment": ["none", "light", "heavy"]},
    "score": {"backbone": list(BACKBONES), "image_size": [48, 64, 96], "recipe": list(RECIPES),
              "augment": ["none", "light", "heavy"]},
}
LR_RANGE = (3e-4, 3e-3)
_PRESETS = {"backbone": BACKBONES, "objective": OBJECTIVES, "recipe": RECIPES}


def space(task: str) -> dict:
    """Optuna distributions of the task's search space."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    out: dict = {name: CategoricalDistribution(values) for name, values in CHOICES[task].items()}
    out["lr"] = FloatDistribution(*LR_RANGE, log=True)
    return out


def apply(cfg: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    """``cfg`` with a trial's parameters applied (presets expanded into their flags); not yet validated."""
    changes: dict[str, Any] = {"stem_stride": None, "activation": None, "batch_norm": None, "widths": None}
    for name, value in params.items():
        changes |= _PRESETS[name][value] if name in _PRESETS else {name: value}
    return dataclasses.replace(cfg, **changes)


def params_of(cfg: TrainConfig) -> dict[str, Any] | None:
    """The space's point that ``cfg`` is (its preset names), or None when it is not in the space."""
    params: dict[str, Any] = {"lr": cfg.lr}
    for name, values in CHOICES[cfg.task].items():
        presets = _PRESETS.get(name)
        if presets is None:
            if getattr(cfg, name) not in values:
                return None
            params[name] = getattr(cfg, name)
            continue
        found = [key for key in values if all(getattr(cfg, k) == v for k, v in presets[key].items())]
        if not found:
            return None
        params[name] = found[0]
    return params if LR_RANGE[0] <= cfg.lr <= LR_RANGE[1] else None
