import pytest

from finegrain.losses import MarginCurriculum, build_objective


def test_margin_rises_linearly_from_start_to_end():
    c = MarginCurriculum(start=0.1, end=0.5)
    assert [round(c.margin_at(e, 5), 6) for e in range(5)] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert c.margin_at(10, 5) == pytest.approx(0.5)  # clamped past the end
    assert c.margin_at(0, 1) == 0.5


def test_apply_sets_the_objective_margin():
    objective = build_objective("triplet", embedding_size=8)
    assert MarginCurriculum(0.05, 0.25).apply(objective, 2, 3) == pytest.approx(0.25)
    assert objective.loss.margin == pytest.approx(0.25)
