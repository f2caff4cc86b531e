import numpy as np
import pytest

from finegrain.detect.calibration import (
    IDENTITY,
    NUM_PATTERNS,
    PATTERNS,
    SCALES,
    SHIFTS,
    calibrate,
    correct,
    displace,
    mean_pattern,
)


def test_there_are_45_distinct_patterns_of_the_published_values():
    assert NUM_PATTERNS == 45 and len({tuple(p) for p in PATTERNS}) == 45
    assert set(PATTERNS[:, 0]) == set(SCALES) == {0.83, 0.91, 1.0, 1.10, 1.21}
    assert set(PATTERNS[:, 1]) == set(PATTERNS[:, 2]) == set(SHIFTS) == {-0.17, 0.0, 0.17}
    assert tuple(PATTERNS[IDENTITY]) == (1.0, 0.0, 0.0)


@pytest.mark.parametrize("n", range(45))
def test_every_pattern_inverts_exactly(n):
    rng = np.random.default_rng(n)
    xy = rng.uniform(-50, 500, (20, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(12, 300, (20, 1))], axis=1)
    patterns = np.repeat(PATTERNS[n : n + 1], 20, axis=0)
    window = displace(boxes, patterns)
    np.testing.assert_allclose(correct(window, patterns), boxes, rtol=0, atol=1e-9)


def test_displacement_moves_and_scales_by_the_window_size():
    box = np.array([[100, 200, 150, 250]])  # 50 × 50
    window = displace(box, np.array([[1.21, 0.17, -0.17]]))
    np.testing.assert_allclose(window, [[108.5, 191.5, 108.5 + 60.5, 191.5 + 60.5]])


def test_mean_pattern_weights_only_patterns_above_uniform():
    p = np.full((1, 45), 0.5 / 43)  # below 1/45 everywhere except two patterns
    p[0, 0], p[0, 44] = 0.3, 0.2
    expected = (0.3 * PATTERNS[0] + 0.2 * PATTERNS[44]) / 0.5
    np.testing.assert_allclose(mean_pattern(p), [expected])
    uniform = np.full((1, 45), 1 / 45)
    np.testing.assert_allclose(mean_pattern(uniform), [PATTERNS[IDENTITY]])


def test_a_confident_calibration_net_recovers_the_true_box():
    box = np.array([[40.0, 60.0, 88.0, 108.0]])
    n = 7
    window = displace(box, PATTERNS[n : n + 1])
    confident = np.full((1, 45), 1e-4)
    confident[0, n] = 1 - 44e-4
    np.testing.assert_allclose(calibrate(window, confident), box, atol=0.05)
