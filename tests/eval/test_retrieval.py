"""Retrieval metrics against cases computed by hand."""

import numpy as np
import pytest

from finegrain.eval.retrieval import retrieval_metrics


def _points(xs):
    """1-D positions on a line embedded in 2-D, so the neighbour order is obvious by eye."""
    return np.array([[x, 0.0] for x in xs], dtype=np.float32)


def test_perfect_clusters_score_one():
    emb = _points([0, 0.1, 0.2, 10, 10.1, 10.2])
    m = retrieval_metrics(emb, np.array([0, 0, 0, 1, 1, 1]))
    for key in ("precision_at_1", "r_precision", "map_at_r", "recall_at_1", "map_at_20"):
        assert m[key] == pytest.approx(1.0), key


def test_hand_computed_case():
    # Class a at 0, 1, 5; class b at 2, 6. Leave-one-out neighbour lists (nearest first):
    #   a@0: 1(a) 2(b) 5(a) 6(b)   a@1: 0(a) 2(b) 5(a) 6(b)   a@5: 6(b) 2(b) 1(a) 0(a)
    #   b@2: 1(a) 0(a) 5(a) 6(b)   b@6: 5(a) 2(b) 1(a) 0(a)
    emb = _points([0, 1, 5, 2, 6])
    labels = np.array([0, 0, 0, 1, 1])
    m = retrieval_metrics(emb, labels)
    # P@1: a@0 yes, a@1 yes, a@5 no, b@2 no, b@6 no → 2/5.
    assert m["precision_at_1"] == pytest.approx(2 / 5)
    # R-precision (R = 2 for a, 1 for b): a@0 1/2, a@1 1/2, a@5 0, b@2 0, b@6 0 → 0.2.
    assert m["r_precision"] == pytest.approx(0.2)
    # MAP@R: a@0 (1/1)/2, a@1 (1/1)/2, a@5 0, b@2 0, b@6 0 → 0.2.
    assert m["map_at_r"] == pytest.approx(0.2)
    # recall@5 covers every neighbour: all found.
    assert m["recall_at_5"] == pytest.approx(1.0)
    # MAP@20 over the whole list: a@0 (1 + 2/3)/2, a@1 same, a@5 (1/3 + 2/4)/2, b@2 (1/4)/1, b@6 (1/2)/1.
    expected = np.mean([(1 + 2 / 3) / 2, (1 + 2 / 3) / 2, (1 / 3 + 2 / 4) / 2, 1 / 4, 1 / 2])
    assert m["map_at_20"] == pytest.approx(expected)


def test_queries_against_separate_reference():
    ref = _points([0, 10])
    q = _points([1, 9, 2])
    m = retrieval_metrics(q, np.array([0, 1, 1]), ref, np.array([0, 1]))
    assert m["precision_at_1"] == pytest.approx(2 / 3)
