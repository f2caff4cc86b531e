"""Long-tail losses against hand-written formulas on tiny logits."""

from __future__ import annotations

import math

import pytest
import torch

from finegrain.errors import ConfigError
from finegrain.losses.imbalance import (
    BalancedSoftmaxLoss,
    LDAMLoss,
    balanced_softmax_loss,
    class_balanced_cross_entropy,
    class_balanced_weights,
    ldam_margins,
    tau_normalize,
)

COUNTS = [100, 10, 1]
LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.3, 0.2], [-0.5, 1.5, 0.7], [0.0, 0.0, 3.0]])
TARGETS = torch.tensor([0, 1, 2, 2])


def _ce(row: list[float], target: int) -> float:
    return -row[target] + math.log(sum(math.exp(v) for v in row))


def test_class_balanced_weights_by_hand():
    beta = 0.99
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    expected = [w * 3 / sum(raw) for w in raw]
    assert class_balanced_weights(COUNTS, beta).tolist() == pytest.approx(expected, rel=1e-6)
    assert class_balanced_weights(COUNTS, 0.0).tolist() == [1.0, 1.0, 1.0]  # β = 0: no re-weighting


def test_class_balanced_cross_entropy_by_hand():
    weights = class_balanced_weights(COUNTS, 0.99).tolist()
    expected = sum(weights[t] * _ce(row, t) for row, t in zip(LOGITS.tolist(), TARGETS.tolist())) / 4
    assert float(class_balanced_cross_entropy(LOGITS, TARGETS, COUNTS, 0.99)) == pytest.approx(expected, rel=1e-5)


def test_ldam_margins_and_loss_by_hand():
    margins = ldam_margins(COUNTS, max_margin=0.5).tolist()
    inverse = [n**-0.25 for n in COUNTS]
    assert margins == pytest.approx([0.5 * v / max(inverse) for v in inverse], rel=1e-6)
    assert margins[2] == pytest.approx(0.5) and margins[0] < margins[1] < margins[2]
    loss = LDAMLoss(COUNTS, max_margin=0.5, scale=10.0)
    expected = 0.0
    for row, t in zip(LOGITS.tolist(), TARGETS.tolist()):
        shifted = [10.0 * (v - (margins[t] if j == t else 0.0)) for j, v in enumerate(row)]
        expected += _ce(shifted, t) / 4
    assert float(loss(LOGITS, TARGETS)) == pytest.approx(expected, rel=1e-5)


def test_ldam_defers_reweighting():
    loss = LDAMLoss(COUNTS, scale=10.0, defer_epoch=2, beta=0.99)
    before = float(loss(LOGITS, TARGETS))
    loss.set_epoch(2)
    weights = class_balanced_weights(COUNTS, 0.99).tolist()
    margins = ldam_margins(COUNTS).tolist()
    per = [_ce([10.0 * (v - (margins[t] if j == t else 0.0)) for j, v in enumerate(row)], t)
           for row, t in zip(LOGITS.tolist(), TARGETS.tolist())]
    w = [weights[t] for t in TARGETS.tolist()]
    # torch's weighted mean: Σ w_i·CE_i / Σ w_i
    assert float(loss(LOGITS, TARGETS)) == pytest.approx(sum(a * b for a, b in zip(w, per)) / sum(w), rel=1e-5)
    assert float(loss(LOGITS, TARGETS)) != pytest.approx(before)


def test_balanced_softmax_adds_the_log_prior():
    expected = sum(_ce([v + math.log(n) for v, n in zip(row, COUNTS)], t)
                   for row, t in zip(LOGITS.tolist(), TARGETS.tolist())) / 4
    assert float(balanced_softmax_loss(LOGITS, TARGETS, COUNTS)) == pytest.approx(expected, rel=1e-5)
    assert float(BalancedSoftmaxLoss(COUNTS)(LOGITS, TARGETS)) == pytest.approx(expected, rel=1e-5)


def test_tau_normalisation_rescales_weight_norms():
    weight = torch.tensor([[3.0, 4.0], [0.6, 0.8], [0.0, 2.0]])
    norms = [5.0, 1.0, 2.0]
    for tau in (0.0, 0.5, 1.0):
        out = tau_normalize(weight, tau)
        assert out.norm(dim=1).tolist() == pytest.approx([n ** (1 - tau) for n in norms], rel=1e-6)
        assert torch.allclose(out / out.norm(dim=1, keepdim=True), weight / weight.norm(dim=1, keepdim=True))


def test_bad_counts_and_settings_are_named():
    with pytest.raises(ConfigError, match="class counts"):
        class_balanced_weights([10, 0])
    with pytest.raises(ConfigError, match="beta"):
        class_balanced_weights(COUNTS, 1.0)
    with pytest.raises(ConfigError, match="tau"):
        tau_normalize(torch.ones(2, 2), -1)
