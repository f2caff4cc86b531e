"""Detection quality: match detections to ground truth over a whole set, then recall at fixed false-positive
counts, average precision and a ROC curve (detection rate vs number of false positives).

The matching rule: detections of every image are scanned together by descending score; each one matches the
unmatched ground-truth box of its image with the highest IoU, if that IoU is at least ``iou_threshold``;
otherwise it is a false positive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finegrain.boxes import iou_matrix
from finegrain.utils import atomic_write


@dataclass(frozen=True)
class Matched:
    """Every detection of the set, sorted by descending score, flagged true/false positive."""

    scores: np.ndarray
    true_positive: np.ndarray
    num_truth: int

    def cumulative(self) -> tuple[np.ndarray, np.ndarray]:
        """(detection rate, false positives) after each detection in score order."""
        tp = np.cumsum(self.true_positive)
        fp = np.cumsum(~self.true_positive)
        return tp / max(self.num_truth, 1), fp


def match_detections(
    detections: Mapping[str, tuple[np.ndarray, np.ndarray]],
    truth: Mapping[str, np.ndarray],
    iou_threshold: float = 0.5,
) -> Matched:
    """``detections``: image → (boxes (N, 4), scores (N,)); ``truth``: image → boxes (M, 4)."""
    names, scores, rows = [], [], []
    ious = {}
    for name, (b, sc) in detections.items():
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
        ious[name] = iou_matrix(b, truth.get(name, np.zeros((0, 4))))
        names += [name] * len(b)
        rows.append(np.arange(len(b)))  # each detection's row in its image's IoU matrix
        scores.append(np.asarray(sc, dtype=np.float64).ravel())
    scores = np.concatenate(scores) if scores else np.zeros(0)
    row_of = np.concatenate(rows) if rows else np.zeros(0, dtype=int)
    order = np.argsort(-scores, kind="stable")
    taken = {name: np.zeros(len(t), dtype=bool) for name, t in truth.items()}
    true_positive = np.zeros(len(order), dtype=bool)
    for rank, i in enumerate(order):
        name = names[i]
        if name not in taken or not len(taken[name]):
            continue
        iou = np.where(taken[name], -1.0, ious[name][row_of[i]])
        best = int(np.argmax(iou))
        if iou[best] >= iou_threshold:
            taken[name][best] = True
            true_positive[rank] = True
    return Matched(scores[order], true_positive, sum(len(t) for t in truth.values()))


def recall_at_false_positives(matched: Matched, false_positives: Sequence[int] = (10, 50, 100)) -> dict[int, float]:
    """The highest detection rate reached while the number of false positives is at most k."""
    recall, fp = matched.cumulative()
    out = {}
    for k in false_positives:
        within = fp <= k
        out[int(k)] = float(recall[within].max()) if within.any() else 0.0
    return out


def average_precision(matched: Matched) -> float:
    """Area under the precision-recall curve, with precision made monotone (all-point interpolation)."""
    if matched.num_truth == 0 or not len(matched.scores):
        return 0.0
    tp = np.cumsum(matched.true_positive)
    recall = tp / matched.num_truth
    precision = tp / np.arange(1, len(tp) + 1)
    precision = np.concatenate([[0.0], precision, [0.0]])
    recall = np.concatenate([[0.0], recall, [recall[-1]]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def roc_png(curves: Mapping[str, Matched], path: str | Path, max_false_positives: int = 200, title: str = "") -> Path:
    """Detection rate vs number of false positives, one line per detector."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=110)
    for label, matched in curves.items():
        recall, fp = matched.cumulative()
        ax.step(np.concatenate([[0], fp]), np.concatenate([[0], recall]), where="post", label=label)
    for k in (10, 50, 100):
        ax.axvline(k, color="0.85", lw=0.8, zorder=0)
    ax.set_xlim(0, max_false_positives)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false positives")
    ax.set_ylabel("detection rate")
    ax.set_title(title or "detection ROC")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight"))
    plt.close(fig)
    return path
