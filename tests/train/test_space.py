"""The search space of --time-budget: the defaults are one of its points, and every point is a valid config."""

from __future__ import annotations

import itertools

import pytest

from finegrain.config import TrainConfig
from finegrain.train import space


@pytest.mark.parametrize("task", ["embed", "score"])
def test_the_defaults_are_a_point_of_the_space(task):
    defaults = TrainConfig(data="x", task=task).validate()
    params = space.params_of(defaults)
    assert params is not None, f"the {task} defaults are outside the --time-budget space"
    # Applying the point to a fresh config gives back the defaults' architecture and training choices.
    again = space.apply(TrainConfig(data="x", task=task), params).validate()
    assert again.backbone_kwargs() == defaults.backbone_kwargs() and again.backbone == defaults.backbone


@pytest.mark.parametrize("task", ["embed", "score"])
def test_every_point_of_the_space_validates(task):
    choices = space.CHOICES[task]
    for values in itertools.product(*choices.values()):
        params = dict(zip(choices, values)) | {"lr": 1e-3}
        cfg = space.apply(TrainConfig(data="x", task=task), params).validate()
        assert space.params_of(cfg) == params


def test_a_trial_that_switches_recipe_takes_that_recipes_own_defaults():
    for given, trial_recipe in (("direct", "staged"), ("staged", "direct")):
        cfg = TrainConfig(data="x", task="score", recipe=given).validate()
        switched = space.apply(cfg, {"recipe": trial_recipe}).validate()
        plain = TrainConfig(data="x", task="score", recipe=trial_recipe).validate()
        assert (switched.head_dropout, switched.balance) == (plain.head_dropout, plain.balance), given
