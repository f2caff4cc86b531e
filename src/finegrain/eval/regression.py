"""Scores against human ratings: correlation and error, plus a predicted-vs-true scatter plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from finegrain.errors import DataError
from finegrain.utils import atomic_write


def regression_metrics(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman correlation, mean absolute error and root-mean-square error."""
    p = np.asarray(predicted, dtype=np.float64).ravel()
    t = np.asarray(true, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise DataError(f"{len(p)} predictions for {len(t)} true scores")
    if len(p) < 2:
        raise DataError("correlation needs at least two scored images")
    # A constant prediction has no correlation; report 0 rather than NaN so logs and plateaus stay numeric.
    constant = np.ptp(p) == 0 or np.ptp(t) == 0
    return {
        "pearson": 0.0 if constant else float(stats.pearsonr(p, t)[0]),
        "spearman": 0.0 if constant else float(stats.spearmanr(p, t)[0]),
        "mae": float(np.abs(p - t).mean()),
        "rmse": float(np.sqrt(((p - t) ** 2).mean())),
    }


def pearson_standard_error(r: float, n: int) -> float:
    """The large-sample standard error of a Pearson correlation ``r`` measured on ``n`` pairs, (1 - r²)/√(n - 1)."""
    return float((1 - r * r) / np.sqrt(max(n - 1, 1)))


def scatter_png(predicted: np.ndarray, true: np.ndarray, path: Path, title: str = "") -> Path:
    """Predicted vs true scores with the identity line and the metrics in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = regression_metrics(predicted, true)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    ax.scatter(true, predicted, s=6, alpha=0.4, edgecolors="none")
    lo = float(min(np.min(true), np.min(predicted)))
    hi = float(max(np.max(true), np.max(predicted)))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="predicted = true")
    ax.set_xlabel("true score")
    ax.set_ylabel("predicted score")
    ax.set_title(f"{title}{' - ' if title else ''}Pearson {m['pearson']:.3f}, MAE {m['mae']:.3f}", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path
