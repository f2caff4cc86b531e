import numpy as np
import pytest

from finegrain.errors import DataError
from finegrain.eval.regression import pearson_standard_error, regression_metrics, scatter_png


def test_metrics_against_hand_computed_values():
    predicted = np.array([1.0, 2.0, 3.0, 5.0])
    true = np.array([1.0, 3.0, 2.0, 4.0])
    m = regression_metrics(predicted, true)
    # Pearson by hand: means 2.75 and 2.5; deviations (-1.75,-.75,.25,2.25) and (-1.5,.5,-.5,1.5).
    cov = (-1.75 * -1.5) + (-0.75 * 0.5) + (0.25 * -0.5) + (2.25 * 1.5)
    sp = np.sqrt((1.75**2 + 0.75**2 + 0.25**2 + 2.25**2) * (1.5**2 + 0.5**2 + 0.5**2 + 1.5**2))
    assert m["pearson"] == pytest.approx(cov / sp)
    # Ranks (1,2,3,4) vs (1,3,2,4): d^2 = 0+1+1+0 -> 1 - 6*2 / (4*15) = 0.8.
    assert m["spearman"] == pytest.approx(0.8)
    assert m["mae"] == pytest.approx((0 + 1 + 1 + 1) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt(3 / 4))


def test_perfect_and_constant_predictions():
    true = np.array([1.0, 2.0, 4.0])
    assert regression_metrics(true * 2 + 1, true)["pearson"] == pytest.approx(1.0)
    constant = regression_metrics(np.full(3, 2.0), true)
    assert constant["pearson"] == 0.0 and constant["spearman"] == 0.0


def test_bad_shapes_are_clear_errors():
    with pytest.raises(DataError, match="3 predictions for 2"):
        regression_metrics(np.zeros(3), np.zeros(2))
    with pytest.raises(DataError, match="at least two"):
        regression_metrics(np.zeros(1), np.zeros(1))


def test_scatter_png_is_written(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    true = rng.uniform(1, 5, 100)
    path = scatter_png(true + rng.normal(0, 0.3, 100), true, tmp_path / "s.png", title="test")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 300 and image.std() > 10


def test_pearson_standard_error_matches_the_spread_of_simulated_correlations():
    # 4,000 samples of 150 pairs drawn with a true correlation of 0.8: the spread of their r is the formula's.
    rng = np.random.default_rng(0)
    rho, n = 0.8, 150
    x = rng.standard_normal((4000, n))
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((4000, n))
    r = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(x, y)])
    assert pearson_standard_error(rho, n) == pytest.approx((1 - rho**2) / np.sqrt(n - 1))
    assert r.std() == pytest.approx(pearson_standard_error(rho, n), rel=0.08)
