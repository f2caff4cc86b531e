"""Classification metrics: top-1, top-5, mean per-class accuracy, a per-class table and a confusion-matrix PNG.

Mean per-class accuracy (the mean of each class's recall) is the long-tail metric: on an imbalanced test set
top-1 is dominated by the head classes, and a classifier that ignores the tail still scores well on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix

from finegrain.utils import atomic_write


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    """The fraction of rows whose true class is among the ``k`` highest (ties broken by class order)."""
    k = min(k, probabilities.shape[1])
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == np.asarray(labels)[:, None]).any(axis=1))) if len(labels) else 0.0


def per_class_accuracy(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Each class's recall; NaN for a class with no test image."""
    hits = np.bincount(labels, weights=(predicted == labels).astype(float), minlength=num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``top1``, ``top5`` and ``mean_per_class_accuracy`` (over the classes present in ``labels``)."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = probabilities.argmax(axis=1)
    per_class = per_class_accuracy(predicted, labels, probabilities.shape[1])
    return {"top1": top_k_accuracy(probabilities, labels, 1), "top5": top_k_accuracy(probabilities, labels, 5),
            "mean_per_class_accuracy": float(np.nanmean(per_class)) if len(labels) else 0.0}


def per_class_table(probabilities: np.ndarray, labels: np.ndarray, classes: list[str],
                    train_counts: np.ndarray | None = None) -> list[dict]:
    """One row per class present in ``labels``: its name, test images, accuracy (and training images)."""
    predicted = probabilities.argmax(axis=1)
    accuracy = per_class_accuracy(predicted, labels, len(classes))
    counts = np.bincount(labels, minlength=len(classes))
    rows = []
    for c in np.flatnonzero(counts):
        row = {"class": classes[c], "images": int(counts[c]), "accuracy": round(float(accuracy[c]), 4)}
        if train_counts is not None:
            row["train_images"] = int(train_counts[c])
        rows.append(row)
    return rows


def confusion_png(predicted: np.ndarray, labels: np.ndarray, classes: list[str], path: Path,
                  title: str = "") -> Path:
    """The row-normalised confusion matrix (true class down, predicted across); names shown up to 40 classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = confusion_matrix(labels, predicted, labels=np.arange(len(classes))).astype(float)
    matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = min(4 + 0.18 * len(classes), 16)
    fig, ax = plt.subplots(figsize=(side, side), dpi=100)
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    if len(classes) <= 40:
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = float(np.mean(predicted == labels)) if len(labels) else 0.0
    ax.set_title(f"{title}{' - ' if title else ''}top-1 {accuracy:.3f}, rows sum to 1", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path
