"""Scoring recipes: ``staged`` (Siamese pre-training -> Net2Net widen -> Huber regression) and ``direct``.

Staged, in the run folder ``RUN``:
1. ``RUN/pretrain``: the score bins are classes; a Siamese net (L1 distance, hinge embedding loss) learns
   which images rate alike, growing by Net2Net each time it plateaus (``--grow``). Batches hold every bin.
2. Every layer is widened by ``--widen`` with symmetry-breaking noise (function-preserving).
3. ``RUN``: the widened backbone gets a regression head (dropout -> linear -> 1) and is fine-tuned with the
   Huber loss, sampling score bins uniformly (``--balance``).
Each stage resumes from its own checkpoint; a finished stage 1 is not repeated.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from finegrain.config import TrainConfig
from finegrain.data import PreparedData, bin_scores
from finegrain.encoders import MODEL_FILE
from finegrain.errors import ConfigError
from finegrain.models import Backbone, RegressionHead, ScoringModel, load_model, save_model
from finegrain.models.net2net import widen
from finegrain.train.build import build_backbone, build_embedding_model
from finegrain.train.embed_task import EmbedTask
from finegrain.train.fit import fit, say
from finegrain.train.score_task import ScoreTask

PRETRAIN_DIR = "pretrain"


def train_scorer(
    cfg: TrainConfig, train: PreparedData, val: PreparedData | None, resume: bool, quiet: bool, tensorboard: bool,
    deadline: float | None = None, epoch_hooks: list | None = None, warm_start: Path | None = None,
) -> list[dict]:
    run_dir = Path(cfg.out)
    if warm_start is not None:  # a trained scorer of these settings (a search trial): no stage to repeat
        model, _ = load_model(warm_start)
        return _fine_tune(cfg, model.train(), train, val, resume, quiet, tensorboard, deadline, epoch_hooks, "")
    if cfg.recipe == "staged":
        backbone = _pretrained_widened_backbone(cfg, train, val, run_dir, resume, quiet, tensorboard)
        grow = ""  # growth belongs to pre-training; fine-tuning keeps the widened architecture
    else:
        backbone = build_backbone(cfg)
        grow = cfg.grow
    model = ScoringModel(backbone, RegressionHead(backbone.num_features, cfg.pooling, cfg.head_dropout))
    with torch.no_grad():
        # Start at the mean rating with a zero read-out: the first predictions are sane whatever the scale of
        # the (pre-trained, widened) features, and the early steps learn differences rather than the offset.
        model.head.fc.weight.zero_()
        model.head.fc.bias.fill_(float(np.mean(train.scores)))
    return _fine_tune(cfg, model, train, val, resume, quiet, tensorboard, deadline, epoch_hooks, grow)


def _fine_tune(cfg: TrainConfig, model: ScoringModel, train: PreparedData, val: PreparedData | None, resume: bool,
               quiet: bool, tensorboard: bool, deadline: float | None, epoch_hooks: list | None,
               grow: str) -> list[dict]:
    """Stage 3: the Huber regression, into the run folder."""
    run_dir = Path(cfg.out)
    task = ScoreTask(cfg, model, train, val)
    say(f"fine-tuning a {cfg.backbone} scorer ({cfg.epochs} epochs, Huber loss"
        + (", class-balanced)" if cfg.balance else ")"), quiet)
    history = fit(task, cfg, run_dir, cfg.epochs, grow, resume, tensorboard, deadline=deadline,
                  epoch_hooks=epoch_hooks, backbone_lr_scale=cfg.backbone_lr_scale if cfg.init else 1.0)
    manifest = task.model_manifest()
    save_model(task.model, run_dir / MODEL_FILE, **manifest)
    if choice := manifest["provenance"].get("tta_choice"):
        pearson = choice["val_pearson"]
        say(f"default test-time augmentation: {','.join(manifest['tta']) or 'none'} (validation Pearson "
            f"{pearson['none']:.3f} plain, {pearson['flip']:.3f} mirror-averaged)", quiet)
    return history


def siamese_config(cfg: TrainConfig, num_bins: int) -> TrainConfig:
    """Stage 1's settings: the score bins are the classes, and every batch holds all of them."""
    batch = cfg.batch_size or cfg.p * cfg.k
    return dataclasses.replace(
        cfg, task="embed", loss="siamese", miner="all", epochs=cfg.pretrain_epochs, p=num_bins,
        k=max(2, batch // num_bins), out=str(Path(cfg.out) / PRETRAIN_DIR), split_by="image",
    ).validate()


def _with_bins(data: PreparedData, width: float) -> PreparedData:
    bins = bin_scores(data.scores, width)
    present = np.unique(bins)
    return dataclasses.replace(
        data, labels=np.searchsorted(present, bins).astype(np.int64), classes=[str(b * width) for b in present]
    )


def _pretrained_widened_backbone(
    cfg: TrainConfig, train: PreparedData, val: PreparedData | None, run_dir: Path, resume: bool, quiet: bool,
    tensorboard: bool,
) -> Backbone:
    """Stages 1 and 2: the Siamese-pre-trained backbone (trained now, or loaded when done), widened.

    With ``--init`` the started-from model's backbone takes the place of stage 1.
    """
    pre_dir = run_dir / PRETRAIN_DIR
    pre_model = pre_dir / MODEL_FILE
    pretrain = cfg.pretrain_epochs > 0 and cfg.init is None
    if pretrain and not pre_model.exists():
        train_bins = _with_bins(train, cfg.bin_width)
        if len(train_bins.classes) < 2:
            raise ConfigError(
                f"--bin-width {cfg.bin_width} puts every training score in one bin; Siamese pre-training needs "
                "at least two: lower --bin-width"
            )
        stage1 = siamese_config(cfg, len(train_bins.classes))
        say(f"stage 1: Siamese pre-training on {len(train_bins.classes)} score bins "
            f"({stage1.epochs} epochs, {stage1.p}x{stage1.k} batches, growth: {stage1.grow or 'none'})", quiet)
        task = EmbedTask(stage1, build_embedding_model(stage1), train_bins,
                         _with_bins(val, cfg.bin_width) if val is not None else None)
        fit(task, stage1, pre_dir, stage1.epochs, stage1.grow, resume, tensorboard)
        save_model(task.model, pre_model, **task.model_manifest())
    if pretrain:
        model, _ = load_model(pre_model)
    else:
        model = build_embedding_model(cfg)
        say("stage 1: skipped" + (f" (starting from --init {cfg.init})" if cfg.init else ""), quiet)
    if cfg.widen > 1:
        # Seeded, so a resumed stage 3 rebuilds exactly the same starting point before loading its checkpoint.
        event = widen(model, cfg.widen, noise=cfg.grow_noise, seed=cfg.seed)
        say(f"stage 2: {event}", quiet)
    return model.backbone.train()
