"""Net2Net growth on plateau inside the trainer: the model grows, trains on, and resumes after growth."""

from __future__ import annotations

import pytest
import torch

from finegrain.artifact import read_manifest
from finegrain.models import create_model, model_from_config
from finegrain.train.growth import GrowOnPlateau
from finegrain.train.trainer import CHECKPOINT, OptimConfig, Trainer


class Interrupted(Exception):
    pass


class EmbedToyTask:
    """Pull embeddings of random images towards fixed targets; validation only gets worse, so every epoch
    after the first is a plateau (patience 1)."""

    monitor = ("val_flat", "max")
    epoch = 0

    def __init__(self, fail_at_epoch: int | None = None):
        torch.manual_seed(0)
        self.model = create_model("conv4", embedding_size=8, pooling="avg", widths=[8, 8, 8, 8])
        self.fail_at_epoch = fail_at_epoch

    def steps_per_epoch(self):
        return 3

    def make_loader(self, epoch, seed):
        if epoch == self.fail_at_epoch:
            raise Interrupted
        g = torch.Generator().manual_seed(seed)
        for _ in range(3):
            x = torch.randn(6, 3, 16, 16, generator=g)
            yield x, torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)

    def loss(self, batch):
        x, target = batch
        return (self.model(x) - target).pow(2).sum(1).mean()

    def loss_parameters(self):
        return []

    def on_epoch_start(self, epoch, epochs):
        self.epoch = epoch
        return {}

    def validate(self):
        return {"flat": 0.5 - 0.01 * self.epoch}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass

    def restore_model(self, model_config, state):
        self.model = model_from_config(model_config)
        self.model.load_state_dict(state)


def _trainer(task, run_dir, epochs=5):
    config = OptimConfig(epochs=epochs, lr=1e-2, plateau_patience=1, progress=False)
    return Trainer(task, config, run_dir, plateau_hooks=[GrowOnPlateau("widen:2,deepen", noise=0.05)],
                   tensorboard=False)


def test_growth_follows_the_schedule_and_training_goes_on(tmp_path):
    task = EmbedToyTask()
    trainer = _trainer(task, tmp_path)
    last: dict = {}

    def keep_last(t, row):
        last.update(model=t.task.model, params={id(p) for g in t.optimizer.param_groups for p in g["params"]})

    trainer.epoch_hooks.append(keep_last)
    history = trainer.fit()
    events = [row.get("event") for row in history]
    # Plateaus at epochs 1, 2, 3, 4: the two steps, then nothing left to apply.
    assert events[1].startswith("net2net widen x2") and events[2].startswith("net2net deepen")
    assert events[3] is None and events[4] is None
    grown = last["model"]
    assert grown.backbone.config()["widths"] == [16, 16, 16, 16, 16]
    assert grown.backbone.config()["depths"] == [1, 1, 1, 2]
    # The optimiser was rebuilt for the grown parameters (not left holding the replaced ones).
    assert {id(p) for p in grown.parameters()} == last["params"]
    assert read_manifest(tmp_path / CHECKPOINT)["architecture"]["backbone"]["depths"] == [1, 1, 1, 2]
    # The validation metric never improved after the first epoch: the model ends as that epoch left it.
    assert trainer.best.epoch == 0 and task.model.backbone.config()["widths"] == [8, 8, 8, 8]


def test_run_killed_after_growth_resumes_to_the_same_weights(tmp_path):
    straight = EmbedToyTask()
    _trainer(straight, tmp_path / "straight").fit()

    killed = EmbedToyTask(fail_at_epoch=3)  # dies after both growth steps were checkpointed
    with pytest.raises(Interrupted):
        _trainer(killed, tmp_path / "killed").fit()
    resumed = EmbedToyTask()  # a fresh process: the small, ungrown model until the checkpoint loads
    history = _trainer(resumed, tmp_path / "killed").fit(resume=True)
    assert [row.get("event") is not None for row in history] == [False, True, True, False, False]
    assert resumed.model.config() == straight.model.config()
    for key, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=1e-6, msg=key)
