from finegrain.train.plateau import PlateauDetector


def test_fires_after_patience_epochs_without_improvement_and_rearms():
    d = PlateauDetector(patience=2, mode="max")
    fired = [d.update(v) for v in [0.1, 0.2, 0.2, 0.19, 0.3, 0.3, 0.3, 0.3, 0.3]]
    assert fired == [False, False, False, True, False, False, True, False, True]


def test_min_mode_and_state_round_trip():
    d = PlateauDetector(patience=1, mode="min")
    assert [d.update(v) for v in [1.0, 0.5, 0.6]] == [False, False, True]
    e = PlateauDetector(patience=1, mode="min")
    e.load_state_dict(d.state_dict())
    assert e.best == 0.5 and e.update(0.7) is True


def test_patience_zero_never_fires():
    d = PlateauDetector(patience=0)
    assert not any(d.update(0.0) for _ in range(10))
