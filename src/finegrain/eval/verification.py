"""Face verification ("same or not?") by thresholding a distance, and the LFW 10-fold protocol.

Each fold's threshold is the one that maximises accuracy on the other folds, so the reported
accuracy never sees its own threshold being chosen. Distances are Euclidean between unit
embeddings (in [0, 2]); a pair is called "same" when its distance is at most the threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from finegrain.errors import DataError
from finegrain.utils import atomic_write


def pair_distances(embeddings: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Euclidean distance of each pair ``index[i] = [a, b]`` of rows of ``embeddings``."""
    return np.linalg.norm(embeddings[index[:, 0]] - embeddings[index[:, 1]], axis=1)


def best_threshold(distances: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The threshold with the highest accuracy on these pairs, and that accuracy.

    Candidates are the midpoints between consecutive distinct distances, plus one below the smallest
    and one above the largest; ties go to the smallest threshold. O(n log n) via cumulative counts.
    """
    d = np.asarray(distances, dtype=np.float64)
    s = np.asarray(same, dtype=bool)
    if len(d) == 0:
        raise DataError("no pairs to choose a threshold on")
    values = np.unique(d)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    order = np.sort(d[s]), np.sort(d[~s])
    # Pairs at or below each threshold: same pairs there are right, different pairs above it are right.
    same_below = np.searchsorted(order[0], candidates, side="right")
    diff_below = np.searchsorted(order[1], candidates, side="right")
    correct = same_below + (len(order[1]) - diff_below)
    best = int(np.argmax(correct))
    return float(candidates[best]), float(correct[best] / len(d))


def accuracy_at(distances: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(np.mean((np.asarray(distances) <= threshold) == np.asarray(same, dtype=bool)))


def kfold_verification(distances: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """Per-fold accuracy with each threshold chosen on the other folds; mean ± standard error.

    The standard error is the sample standard deviation over folds divided by √folds, as LFW reports it.
    """
    folds = np.asarray(folds)
    ids = np.unique(folds)
    if len(ids) < 2:
        raise DataError("the 10-fold protocol needs at least 2 folds; this pair set has 1")
    accuracies, thresholds = [], []
    for f in ids:
        test = folds == f
        threshold, _ = best_threshold(distances[~test], same[~test])
        thresholds.append(threshold)
        accuracies.append(accuracy_at(distances[test], same[test], threshold))
    acc = np.array(accuracies)
    return {
        "accuracy": float(acc.mean()),
        "standard_error": float(acc.std(ddof=1) / np.sqrt(len(acc))),
        "fold_accuracies": [float(a) for a in acc],
        "thresholds": [float(t) for t in thresholds],
    }


def validation_threshold(embeddings: np.ndarray, labels: np.ndarray, seed: int = 0,
                         max_pairs: int = 20_000) -> dict | None:
    """A same/different threshold from held-out images: matched pairs (up to ``max_pairs``) and as many
    mismatched ones, so accuracy is balanced; None when there is no matched or no mismatched pair.

    Small sets use every pair; larger ones draw pairs at random, so memory and time stay bounded by
    ``max_pairs`` however many images there are (all n² pairs of 100,000 images would not fit).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if len(labels) <= _EXHAUSTIVE:
        a, b = np.triu_indices(len(labels), k=1)
        matched = np.flatnonzero(labels[a] == labels[b])
        mismatched = np.flatnonzero(labels[a] != labels[b])
        if len(matched) == 0 or len(mismatched) == 0:
            return None
        n = min(len(matched), len(mismatched), max_pairs)
        chosen = np.concatenate([rng.choice(matched, n, replace=False), rng.choice(mismatched, n, replace=False)])
        index = np.stack([a[chosen], b[chosen]], axis=1)
    else:
        index = _sampled_pairs(labels, max_pairs, rng)
        if index is None:
            return None
    threshold, accuracy = best_threshold(pair_distances(embeddings, index), labels[index[:, 0]] == labels[index[:, 1]])
    return {"threshold": threshold, "accuracy": accuracy, "fitted_on": "validation split", "pairs": int(len(index))}


_EXHAUSTIVE = 2_000  # up to this many images every pair is enumerated (2 million pairs)


def _sampled_pairs(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray | None:
    """``count`` matched pairs (a class drawn in proportion to its pairs, then two of its images) and ``count``
    mismatched ones (an image drawn in proportion to how many images differ from it, then one of those),
    drawn with replacement: every pair of either kind is equally likely."""
    _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    pairs_per_class = sizes * (sizes - 1) / 2
    if pairs_per_class.sum() == 0 or len(sizes) < 2:
        return None
    members = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cls = rng.choice(len(sizes), count, p=pairs_per_class / pairs_per_class.sum())
    first = rng.integers(0, sizes[cls])
    second = (first + rng.integers(1, np.maximum(sizes[cls], 2))) % sizes[cls]  # never the same image
    matched = np.stack([members[starts[cls] + first], members[starts[cls] + second]], axis=1)
    others = len(labels) - sizes[inverse]  # images of another class, per image
    first = rng.choice(len(labels), count, p=others / others.sum())
    own = inverse[first]
    pick = rng.integers(0, others[first])  # a position in the label-sorted order with the own class cut out
    pick = np.where(pick < starts[own], pick, pick + sizes[own])
    mismatched = np.stack([first, members[pick]], axis=1)
    return np.concatenate([matched, mismatched])


def roc_summary(distances: np.ndarray, same: np.ndarray, fars: tuple[float, ...] = (1e-2, 1e-3)) -> dict:
    """ROC AUC and the true-accept rate at each false-accept rate (the best TAR with FAR ≤ target)."""
    same = np.asarray(same, dtype=bool)
    if same.all() or not same.any():
        raise DataError("ROC needs both matched and mismatched pairs")
    far, tar, _ = roc_curve(same, -np.asarray(distances))
    out = {"roc_auc": float(roc_auc_score(same, -np.asarray(distances)))}
    for target in fars:
        out[f"tar_at_far_{target:g}"] = float(tar[far <= target].max())
    return out


def roc_png(distances: np.ndarray, same: np.ndarray, path: Path | str, title: str = "verification ROC") -> None:
    """True-accept rate against false-accept rate (log scale), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    far, tar, _ = roc_curve(np.asarray(same, dtype=bool), -np.asarray(distances))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(np.maximum(far, 1e-4), tar)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
