"""One training run: read and split the data, build the model, fit it, save it (``train_run``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from finegrain.config import TrainConfig
from finegrain.data import PreparedData, bin_scores, prepare, read_source, split_records
from finegrain.data.split import val_class_count
from finegrain.encoders import MODEL_FILE
from finegrain.errors import ConfigError
from finegrain.models import load_model, save_model
from finegrain.train.build import build_embedding_model
from finegrain.train.classify_recipe import train_classifier
from finegrain.train.embed_task import EmbedTask
from finegrain.train.fit import fit, say
from finegrain.train.score_recipe import train_scorer
from finegrain.utils import seed_everything, set_threads

CONFIG_FILE = "config.yaml"


def train_run(cfg: TrainConfig, resume: bool = False, quiet: bool = False, tensorboard: bool = True,
              deadline: float | None = None, epoch_hooks: list | None = None,
              warm_start: Path | None = None) -> list[dict]:
    """One training run of a validated ``cfg`` into ``cfg.out``; returns the history.

    ``warm_start``: a model file of the same settings (a search trial's) whose weights training continues from.
    """
    run_dir = Path(cfg.out)
    set_threads(cfg.threads)
    seed_everything(cfg.seed)
    train_data, val_data = prepare_splits(cfg, quiet)
    if cfg.task == "embed" or cfg.head == "knn":
        cfg = fit_batch_to_classes(cfg, len(train_data.classes), quiet)
    if cfg.epochs is None:  # the saved configuration says how many epochs the data asked for
        cfg = dataclasses.replace(cfg, epochs=cfg.epochs_for(len(train_data.records)))
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / CONFIG_FILE)
    if cfg.task == "classify":
        return train_classifier(cfg, train_data, val_data, resume, quiet, tensorboard, deadline, epoch_hooks)
    if cfg.task == "score":
        return train_scorer(cfg, train_data, val_data, resume, quiet, tensorboard, deadline, epoch_hooks, warm_start)
    model = load_model(warm_start)[0].train() if warm_start else build_embedding_model(cfg)
    task = EmbedTask(cfg, model, train_data, val_data)
    history = fit(task, cfg, run_dir, cfg.epochs, cfg.grow, resume, tensorboard, deadline=deadline,
                  epoch_hooks=epoch_hooks, backbone_lr_scale=cfg.backbone_lr_scale if cfg.init else 1.0)
    save_model(task.model, run_dir / MODEL_FILE, **task.model_manifest())
    return history


def fit_batch_to_classes(cfg: TrainConfig, classes: int, quiet: bool) -> TrainConfig:
    """P×K batches draw P classes: with fewer training classes, P drops to their number (and says so)."""
    if classes < 2:
        raise ConfigError(f"metric learning needs at least 2 training classes with 2 or more images, found {classes}")
    if cfg.p <= classes:
        return cfg
    say(f"note: --p {cfg.p} lowered to {classes}: the training data have {classes} classes", quiet)
    return dataclasses.replace(cfg, p=classes)


MIN_VAL_IMAGES = 100


def feasible_val(records: list, cfg: TrainConfig) -> tuple[float, str | None]:
    """The validation fraction to use, and a note when the data are too few to hold one out.

    Validation drives training (early stopping, the epoch kept), so it must be large enough to trust: at
    least ``MIN_VAL_IMAGES`` held-out images (in whole classes to embed, stratified by score to score) and
    two classes left to train on. Below that, a held-out split would cost training data for a noisy signal:
    training uses everything, for the full epochs, without early stopping, and says so.
    """
    if cfg.val == 0 or any(r.split is not None for r in records):
        return cfg.val, None
    if cfg.split_by == "class":
        classes = len({r.label for r in records})
        held = val_class_count(classes, cfg.val)
        if held > classes - 2 or len(records) * held / classes < MIN_VAL_IMAGES:
            return 0.0, (f"{len(records)} images of {classes} classes are too few to hold out whole classes for "
                         f"validation (about {MIN_VAL_IMAGES} images are needed, and 2 classes left to train on): "
                         "training on all of them for the full epochs, without early stopping")
    elif round(cfg.val * len(records)) < MIN_VAL_IMAGES:
        return 0.0, (f"{len(records)} images are too few to hold out {MIN_VAL_IMAGES} for validation: training "
                     "on all of them for the full epochs, without early stopping")
    return cfg.val, None


def prepare_splits(cfg: TrainConfig, quiet: bool) -> tuple[PreparedData, PreparedData | None]:
    """Read, split and decode the data once; report notes (dropped files, one-image classes, no validation).

    Scores are held out stratified by score bin (``--bin-width``), so validation sees the whole range.
    """
    # An embedding's list file holds labels even when they are numbers (class ids); a scorer's holds scores.
    labelled = cfg.task != "score"
    records = read_source(cfg.data, cfg.root, kind="label" if labelled else "score")
    val, note = feasible_val(records, cfg)
    if note:
        say(f"note: {note}", quiet)
    strata = bin_scores([r.score for r in records], cfg.bin_width) if cfg.task == "score" else None
    splits = split_records(records, by=cfg.split_by, val=val, seed=cfg.seed, strata=strata)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None
    faces = cfg.preprocess().face_cropper()

    def load(part: str) -> PreparedData:
        # A classifier learns a class from one image too; metric learning needs two (a positive pair).
        return prepare(splits[part], cfg.image_size, cache_dir=cache, task="embed" if labelled else "score",
                       min_per_class=1 if cfg.task == "classify" else 2, skip_bad=cfg.skip_bad,
                       progress=cfg.progress, faces=faces)

    train_data = load("train")
    val_data = load("val") if splits.get("val") else None
    for note in train_data.notes + (val_data.notes if val_data else []):
        say(f"note: {note}", quiet)
    what = f" of {len(train_data.classes)} classes" if labelled else " with scores"
    say(f"training on {len(train_data.records)} images{what}"
        + (f", validating on {len(val_data.records)} images" if val_data else ""), quiet)
    return train_data, val_data
