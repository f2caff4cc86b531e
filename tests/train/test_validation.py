"""Validation-driven training: early stopping on the validation metric, the best epoch's weights restored,
the last epoch's kept in the checkpoint; tiny data trains without a split and says so."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from finegrain.artifact import read_artifact, read_manifest
from finegrain.cli import main
from finegrain.train.trainer import CHECKPOINT, OptimConfig, Trainer

from .test_trainer import ToyTask

SCRIPT = [0.2, 0.5, 0.9, 0.7, 0.8, 0.85, 0.6, 0.95, 0.99]  # validation value after each epoch


class ScriptedTask(ToyTask):
    """The toy regression, with a validation metric that follows SCRIPT: best at epoch 2 for a while."""

    monitor = ("val_score", "max")

    def __init__(self):
        super().__init__()
        self.epoch = -1

    def on_epoch_start(self, epoch, epochs):
        self.epoch = epoch
        return {}

    def validate(self):
        return {"score": SCRIPT[self.epoch]}


def _fit_recording_weights(task, run_dir) -> tuple[Trainer, list[dict], list[dict]]:
    """Fit 9 epochs with patience 3; also returns a copy of the weights after each epoch."""
    weights: list[dict] = []
    trainer = Trainer(task, OptimConfig(epochs=9, lr=0.05, patience=3, progress=False), run_dir,
                      tensorboard=False,
                      epoch_hooks=[lambda t, row: weights.append({k: v.clone() for k, v in t.task.model.state_dict()
                                                                   .items()})])
    return trainer, trainer.fit(), weights


def test_early_stopping_restores_exactly_the_best_epochs_weights(tmp_path):
    task = ScriptedTask()
    trainer, history, weights = _fit_recording_weights(task, tmp_path)
    # Epochs 3, 4 and 5 fail to beat epoch 2's 0.9: training stops after epoch 5 (6 epochs, not 9).
    assert [row["epoch"] for row in history] == [0, 1, 2, 3, 4, 5]
    assert [row.get("best", False) for row in history] == [True, True, True, False, False, False]
    assert "early stop" in history[-1]["event"]
    for key, value in task.model.state_dict().items():
        assert torch.equal(value, weights[2][key]), key
        assert not torch.equal(value, weights[5][key]), key
    # The checkpoint keeps the last epoch (for --resume) and the best one beside it.
    ckpt = read_artifact(tmp_path / CHECKPOINT)
    assert ckpt.manifest["epoch"] == 5 and ckpt.manifest["best"]["epoch"] == 2
    assert torch.equal(ckpt.sub("model")["weight"], weights[5]["weight"])
    assert torch.equal(ckpt.sub("best")["weight"], weights[2]["weight"])
    # A stopped run stays stopped when resumed, and still ends with the best weights.
    again = ScriptedTask()
    assert len(Trainer(again, OptimConfig(epochs=9, lr=0.05, patience=3, progress=False), tmp_path,
                       tensorboard=False).fit(resume=True)) == 6
    assert torch.equal(again.model.weight, weights[2]["weight"])


NOISY = [0.2, 0.5, 0.9, 0.7, 0.8, 0.85, 0.6, 0.5, 0.4]


class NoisyTask(ScriptedTask):
    """A scripted metric with its standard error logged beside it, as the scoring task logs val_pearson_se."""

    def validate(self):
        return {"score": NOISY[self.epoch], "score_se": 0.12}


def test_epochs_within_one_standard_error_of_the_best_are_ties_that_keep_the_later_weights(tmp_path):
    task = NoisyTask()
    trainer, history, weights = _fit_recording_weights(task, tmp_path)
    # Within 0.12 of epoch 2's 0.9: 0.8 and 0.85 are ties, 0.7, 0.6, 0.5 and 0.4 are not. Without the tolerance
    # epochs 3-5 would stop the run at epoch 5 with epoch 2's weights; here the ties reset the patience, the run
    # stops after three stale epochs (6-8) and keeps epoch 5, the latest tie.
    assert [row.get("best", False) for row in history] == [True, True, True, False, True, True, False, False, False]
    assert "early stop" in history[-1]["event"]
    for key, value in task.model.state_dict().items():
        assert torch.equal(value, weights[5][key]), key
    # The bar stays the best value itself: ties do not lower it.
    assert trainer.best.value == 0.9 and trainer.best.epoch == 5


def test_best_epoch_keeps_the_latest_tie_within_the_tolerance():
    from finegrain.train.best import BestEpoch

    best, model = BestEpoch(mode="max"), ToyTask().model
    kept = [best.update(epoch, value, model, tolerance=0.03) for epoch, value in enumerate([0.80, 0.82, 0.80, 0.78])]
    assert kept == [True, True, True, False]
    assert (best.epoch, best.value, best.stale) == (2, 0.82, 1)
    # Without a tolerance the same values keep epoch 1.
    strict = BestEpoch(mode="max")
    [strict.update(epoch, value, model) for epoch, value in enumerate([0.80, 0.82, 0.80, 0.78])]
    assert (strict.epoch, strict.stale) == (1, 2)


def test_without_validation_the_last_epoch_is_kept(tmp_path):
    task = ToyTask()  # monitors the training loss: nothing to choose an epoch by
    history = Trainer(task, OptimConfig(epochs=4, lr=0.05, patience=1, progress=False), tmp_path,
                      tensorboard=False).fit()
    assert len(history) == 4 and not any(row.get("best") for row in history)
    assert torch.equal(read_artifact(tmp_path / CHECKPOINT).sub("model")["weight"], task.model.weight.detach())


FAST = ["--backbone", "conv4", "--image-size", "16", "--embedding-size", "8", "--threads", "1", "--workers", "0",
        "--no-progress"]


def test_too_small_a_validation_split_is_not_held_out(tmp_path, class_folder_factory, capsys):
    """Fewer than 100 held-out images would be a noisy guide that costs training data: all of it trains."""
    data = class_folder_factory(tmp_path / "d", classes=25, per_class=10, size=16)  # ORL's size
    assert main(["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "2", *FAST]) == 0
    captured = capsys.readouterr()
    assert "250 images of 25 classes are too few" in captured.err and "training on 250 images" in captured.err


def test_two_classes_of_three_images_train_and_say_what_they_did(tmp_path, class_folder_factory, capsys):
    data = class_folder_factory(tmp_path / "tiny", classes=2, per_class=3)
    assert main(["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "2", *FAST]) == 0
    captured = capsys.readouterr()
    assert "2 classes are too few to hold out" in captured.err and "without early stopping" in captured.err
    assert "--p 16 lowered to 2" in captured.err
    assert json.loads(captured.out)["epochs"] == 2
    assert "p: 2" in (tmp_path / "run" / "config.yaml").read_text()  # the config says what ran


def test_a_validated_run_keeps_its_best_epoch_and_marks_it(tmp_path, class_folder_factory, capsys):
    data = class_folder_factory(tmp_path / "d", classes=20, per_class=10, size=16)
    run = tmp_path / "run"
    assert main(["train", str(data), "--out", str(run), "--epochs", "4", "--val", "0.5", *FAST]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = max(i for i, row in enumerate(rows) if row.get("best"))  # ties go to the later epoch
    assert rows[best]["val_map_at_r"] >= max(row["val_map_at_r"] for row in rows) - 1e-4
    assert summary["epoch"] == best and summary["val_map_at_r"] == rows[best]["val_map_at_r"]
    assert read_manifest(run / CHECKPOINT)["best"]["epoch"] == best
    assert (run / "curve.png").stat().st_size > 0


def test_scores_are_held_out_stratified_by_score_bin(tmp_path):
    from finegrain.data import Record, bin_scores, split_records

    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.uniform(1, 1.4, 10), rng.uniform(2.6, 3.4, 80), rng.uniform(4.6, 5, 10)])
    records = [Record(tmp_path / f"{i}.jpg", score=float(s)) for i, s in enumerate(scores)]
    parts = split_records(records, by="image", val=0.2, seed=0, strata=bin_scores(scores))
    held = sorted(int(round(r.score)) for r in parts["val"])
    assert held.count(1) == 2 and held.count(5) == 2 and len(held) == 20  # each bin in proportion


@pytest.mark.parametrize("flags, message", [(["--time-budget", "10x"], "--time-budget"),
                                            (["--patience", "-1"], "--patience"),
                                            (["--search-trials", "0"], "--search-trials")])
def test_bad_budget_flags_name_the_flag(flags, message, tmp_path, class_folder, capsys):
    assert main(["train", str(class_folder), "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
