"""The trainer with a toy task: optimiser groups, plateau hooks, logs and checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from finegrain.artifact import read_manifest
from finegrain.errors import FinegrainError
from finegrain.train.trainer import OptimConfig, Trainer


class ToyModel(nn.Linear):
    def config(self) -> dict:
        return {"in": self.in_features, "out": self.out_features}


class ToyTask:
    """Regress y = 2x with a loss that owns a parameter, as ArcFace owns its class centres."""

    monitor = ("train_loss", "min")

    def __init__(self, loss_scale: float = 1.0):
        self.model = ToyModel(1, 1)
        self.centre = nn.Parameter(torch.zeros(1))
        self.loss_scale = loss_scale

    def steps_per_epoch(self):
        return 4

    def make_loader(self, epoch, seed):
        g = torch.Generator().manual_seed(seed)
        for _ in range(4):
            x = torch.randn(8, 1, generator=g)
            yield x, 2 * x

    def loss(self, batch):
        x, y = batch
        return self.loss_scale * ((self.model(x) - y) ** 2).mean() + 0.0 * self.centre.sum()

    def loss_parameters(self):
        return [self.centre]

    def on_epoch_start(self, epoch, epochs):
        return {}

    def validate(self):
        return {}

    def state_dict(self):
        return {"centre": self.centre.detach().clone()}

    def load_state_dict(self, state):
        self.centre.data.copy_(state["centre"])

    def restore_model(self, model_config, state):
        self.model = ToyModel(model_config["in"], model_config["out"])
        self.model.load_state_dict(state)


def test_loss_parameters_get_their_own_group_and_rate(tmp_path):
    task = ToyTask()
    trainer = Trainer(task, OptimConfig(epochs=1, lr=1e-2, loss_lr=0.5, progress=False), tmp_path, tensorboard=False)
    groups = trainer.optimizer.param_groups
    assert len(groups) == 3
    assert groups[2]["params"] == [task.centre] and groups[2]["initial_lr"] == 0.5
    assert groups[2]["weight_decay"] == 0.0
    # Weights decay; biases do not.
    assert groups[0]["params"] == [task.model.weight] and groups[1]["params"] == [task.model.bias]


def test_training_lowers_loss_logs_and_checkpoints(tmp_path):
    task = ToyTask()
    history = Trainer(task, OptimConfig(epochs=5, lr=0.1, progress=False), tmp_path, tensorboard=False).fit()
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1, 2, 3, 4]
    assert (tmp_path / "curve.png").stat().st_size > 0
    assert read_manifest(tmp_path / "checkpoint.safetensors")["epoch"] == 4


def test_a_run_the_deadline_ends_between_epochs_says_so_in_its_checkpoint(tmp_path):
    import time

    from finegrain.train.trainer import TIME_UP

    def slow(trainer, row):  # each epoch "takes" 5 s of a 4 s budget
        row["epoch_seconds"] = 5.0

    config = OptimConfig(epochs=5, lr=0.1, progress=False, deadline=time.time() + 4)
    history = Trainer(ToyTask(), config, tmp_path, tensorboard=False, epoch_hooks=[slow]).fit()
    assert len(history) == 1
    manifest = read_manifest(tmp_path / "checkpoint.safetensors")
    assert manifest["stopped"] == TIME_UP and manifest["epoch"] == 0


def test_plateau_hook_fires_and_its_event_is_logged(tmp_path):
    task = ToyTask(loss_scale=0.0)  # the loss never improves: a plateau from the start
    calls = []

    def grow(trainer, epoch):
        calls.append(epoch)
        return f"grew at epoch {epoch}"

    config = OptimConfig(epochs=5, lr=0.1, plateau_patience=2, progress=False)
    history = Trainer(task, config, tmp_path, plateau_hooks=[grow], tensorboard=False).fit()
    assert calls == [2, 4]
    assert [r.get("event") for r in history] == [None, None, "grew at epoch 2", None, "grew at epoch 4"]


def test_non_finite_loss_is_a_clear_error(tmp_path):
    task = ToyTask(loss_scale=float("nan"))
    with pytest.raises(FinegrainError, match="lower --lr"):
        Trainer(task, OptimConfig(epochs=1, progress=False), tmp_path, tensorboard=False).fit()
