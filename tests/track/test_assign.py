"""Hungarian association against brute force; IoU against a hand-computed case; the cost's gating."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from finegrain.track.assign import INFEASIBLE, associate, association_cost


def _brute_force(cost: np.ndarray, max_cost: float) -> float:
    """The least total cost over every assignment of the smaller side, pairs above max_cost left unmatched
    (each unmatched pair costs nothing, as in ``associate``, but a kept pair must be ≤ max_cost)."""
    n, m = cost.shape
    best = np.inf
    if n <= m:
        for cols in itertools.permutations(range(m), n):
            best = min(best, sum(cost[r, c] for r, c in zip(range(n), cols)))
    else:
        for rows in itertools.permutations(range(n), m):
            best = min(best, sum(cost[r, c] for r, c in zip(rows, range(m))))
    return best


@pytest.mark.parametrize("seed", range(30))
def test_associate_finds_the_least_total_cost(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 6, size=2)
    cost = rng.random((n, m))
    matches, unmatched_rows, unmatched_cols = associate(cost, max_cost=1.0)  # every pair allowed
    assert len(matches) == min(n, m)
    assert sum(cost[r, c] for r, c in matches) == pytest.approx(_brute_force(cost, 1.0))
    assert sorted([r for r, _ in matches] + unmatched_rows) == list(range(n))
    assert sorted([c for _, c in matches] + unmatched_cols) == list(range(m))


def test_pairs_over_the_limit_stay_unmatched():
    cost = np.array([[0.1, INFEASIBLE], [INFEASIBLE, 0.9]])
    assert associate(cost, max_cost=0.5) == ([(0, 0)], [1], [1])
    assert associate(np.zeros((0, 3)), 0.5) == ([], [], [0, 1, 2])


def test_gating_lets_appearance_bridge_a_jump_and_overlap_bridge_a_new_look():
    overlap = np.array([[0.0, 0.6]])
    similarity = np.array([[0.95, 0.1]])
    cost = association_cost(overlap, similarity, appearance_weight=0.5, min_iou=0.1, min_similarity=0.8)
    assert cost[0, 0] < 1 and cost[0, 1] < 1  # both feasible: one by look, one by place
    neither = association_cost(np.array([[0.0]]), np.array([[0.3]]), 0.5, 0.1, 0.8)
    assert neither[0, 0] == INFEASIBLE
