import numpy as np
import pytest

from finegrain.eval.classification import (
    classification_metrics,
    confusion_png,
    per_class_table,
    top_k_accuracy,
)

PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.3, 0.5]])
LABELS = np.array([0, 1, 1, 2])


def test_top_k_against_hand_count():
    # argmax: 0, 2, 0, 2 -> right, wrong, wrong, right; top-2 adds row 1 (1 second) and row 2 (1 second).
    assert top_k_accuracy(PROBS, LABELS, 1) == pytest.approx(0.5)
    assert top_k_accuracy(PROBS, LABELS, 2) == pytest.approx(1.0)
    assert top_k_accuracy(PROBS, LABELS, 5) == pytest.approx(1.0)  # k above the class count is all classes


def test_mean_per_class_accuracy_weights_classes_equally():
    m = classification_metrics(PROBS, LABELS)
    # class 0: 1/1, class 1: 0/2, class 2: 1/1 -> mean 2/3, while top-1 is 2/4.
    assert m == pytest.approx({"top1": 0.5, "top5": 1.0, "mean_per_class_accuracy": 2 / 3})


def test_per_class_table_and_confusion_png(tmp_path):
    rows = per_class_table(PROBS, LABELS, ["a", "b", "c"], np.array([10, 5, 1]))
    assert rows == [{"class": "a", "images": 1, "accuracy": 1.0, "train_images": 10},
                    {"class": "b", "images": 2, "accuracy": 0.0, "train_images": 5},
                    {"class": "c", "images": 1, "accuracy": 1.0, "train_images": 1}]
    path = confusion_png(PROBS.argmax(1), LABELS, ["a", "b", "c"], tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
