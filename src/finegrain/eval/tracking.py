"""Multi-object tracking quality (CLEAR MOT and identity metrics) of MOT rows against ground truth.

Computed with ``motmetrics`` (py-motmetrics): per frame, ground-truth and hypothesis boxes may match when
their IoU is at least ``iou``; the accumulator keeps matches from frame to frame and counts identity switches.

* ``mota`` = 1 - (misses + false positives + id switches) / ground-truth boxes (can be negative);
* ``idf1``: F1 of the best one-to-one assignment of whole hypothesis tracks to whole ground-truth tracks;
* ``id_switches``: times a ground-truth track's matched hypothesis id changed (a swap of two tracks counts
  one for each of them);
* ``precision``, ``recall``: of the boxes, ignoring identity;
* ``mean_iou``: mean IoU of the matched pairs (MOTP as an overlap rather than motmetrics' distance).

Every ground-truth row counts, hidden ones included, as in the MOTChallenge evaluation: a tracker that keeps
a hidden face's track through an occlusion gains, one that drops it loses recall there. ``min_visibility``
turns hidden rows into "don't care" regions instead (the devkit's treatment of distractors): a hypothesis
matched to one is dropped, neither a hit nor a false positive.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

import motmetrics as mm
import numpy as np
from scipy.optimize import linear_sum_assignment


class MotRow(Protocol):
    """What a metric reads of a row (``finegrain.track.mot.MotRow`` has these fields; metrics depend on no
    application package)."""

    frame: int
    track_id: int
    x: float
    y: float
    w: float
    h: float
    vis: float | None


METRICS = {  # our key → motmetrics' name
    "mota": "mota",
    "idf1": "idf1",
    "idp": "idp",
    "idr": "idr",
    "id_switches": "num_switches",
    "precision": "precision",
    "recall": "recall",
    "num_frames": "num_frames",
    "num_gt": "num_objects",
    "num_hyp": "num_predictions",
    "num_tracks": "num_unique_objects",
    "matches": "num_matches",
    "misses": "num_misses",
    "false_positives": "num_false_positives",
    "fragmentations": "num_fragmentations",
    "mostly_tracked": "mostly_tracked",
    "partially_tracked": "partially_tracked",
    "mostly_lost": "mostly_lost",
    "motp": "motp",
}
_COUNTS = {k for k, v in METRICS.items() if v.startswith("num_") or v.startswith("mostly") or v.startswith("partially")}


def iou_distances(gt: np.ndarray, hyp: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """``1 - IoU`` of every ground-truth box with every hypothesis (``x y w h`` rows), NaN (may not match) where
    the IoU is below ``iou``: ``motmetrics.distances.iou_matrix(gt, hyp, max_iou=1 - iou)``.

    Its body, not the call: motmetrics 1.4.0 (the latest release) calls ``np.asfarray``, which NumPy 2 removed;
    ``boxiou`` is the same function's arithmetic and works on both.
    """
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    hyp = np.asarray(hyp, dtype=np.float64).reshape(-1, 4)
    if not len(gt) or not len(hyp):
        return np.empty((len(gt), len(hyp)))
    distance = 1 - mm.distances.boxiou(gt[:, None], hyp[None, :])
    return np.where(distance > 1 - iou, np.nan, distance)


def _by_frame(rows: Iterable[MotRow], what: str) -> dict[int, list[MotRow]]:
    frames: dict[int, list[MotRow]] = defaultdict(list)
    for row in rows:
        frames[row.frame].append(row)
    for frame, in_frame in frames.items():
        ids = [r.track_id for r in in_frame]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"{what}: track id(s) {twice} appear more than once in frame {frame}")
    return frames


def _drop_dont_care(gt: list[MotRow], hyp: list[MotRow], min_visibility: float,
                    iou: float) -> tuple[list[MotRow], list[MotRow]]:
    """Ground truth seen less than ``min_visibility``, and the hypotheses that match it, leave the frame.

    Matching is against all ground truth at once, so a hypothesis on a visible face next to a hidden one is
    not taken away from it."""
    ignored = [r.vis is not None and r.vis < min_visibility for r in gt]
    if not any(ignored) or not hyp:
        return [r for r, skip in zip(gt, ignored) if not skip], hyp
    distance = iou_distances(_xywh(gt), _xywh(hyp), iou)
    cost = np.where(np.isnan(distance), 2.0, distance)  # 2: worse than any allowed pair, so never preferred
    dropped = set()
    for g, h in zip(*linear_sum_assignment(cost)):
        if ignored[g] and not np.isnan(distance[g, h]):
            dropped.add(h)
    return ([r for r, skip in zip(gt, ignored) if not skip], [r for i, r in enumerate(hyp) if i not in dropped])


def _xywh(rows: list[MotRow]) -> np.ndarray:
    return np.array([[r.x, r.y, r.w, r.h] for r in rows], dtype=np.float64).reshape(-1, 4)


def accumulate(gt_rows: Iterable[MotRow], hyp_rows: Iterable[MotRow], iou: float = 0.5,
               min_visibility: float | None = None, num_frames: int | None = None) -> mm.MOTAccumulator:
    """The motmetrics accumulator of the whole sequence, frame by frame (see :func:`mot_metrics`)."""
    gt, hyp = _by_frame(gt_rows, "ground truth"), _by_frame(hyp_rows, "hypotheses")
    last = max([*gt, *hyp, num_frames or 0], default=0)
    acc = mm.MOTAccumulator(auto_id=False)
    # Every frame up to the last is a frame of the video, even one with nothing in it.
    for frame in range(1, last + 1):
        g, h = gt.get(frame, []), hyp.get(frame, [])
        if min_visibility is not None:
            g, h = _drop_dont_care(g, h, min_visibility, iou)
        acc.update([r.track_id for r in g], [r.track_id for r in h], iou_distances(_xywh(g), _xywh(h), iou),
                   frameid=frame)
    return acc


def mot_metrics(gt_rows: Iterable[MotRow], hyp_rows: Iterable[MotRow], iou: float = 0.5,
                min_visibility: float | None = None, num_frames: int | None = None) -> dict[str, float | int]:
    """MOTA, IDF1, id switches, precision, recall and friends (see the module docstring) of a tracker's rows
    against the ground truth's.

    ``iou``: the least IoU of a match. ``min_visibility``: None (the default) counts every ground-truth row;
    a number makes rows seen less than that "don't care". ``num_frames``: the video's length, when its last
    frames are empty. Counts are ints, rates floats; a rate with nothing to measure (e.g. precision with no
    hypotheses) is NaN.
    """
    acc = accumulate(gt_rows, hyp_rows, iou, min_visibility, num_frames)
    summary = mm.metrics.create().compute(acc, metrics=list(METRICS.values()), name="all")
    out: dict[str, float | int] = {}
    for key, name in METRICS.items():
        value = float(summary[name].iloc[0])
        out[key] = int(value) if key in _COUNTS and math.isfinite(value) else value
    motp = out.pop("motp")  # motmetrics' MOTP is the mean distance, 1 - IoU
    out["mean_iou"] = 1 - motp if math.isfinite(motp) else math.nan
    return out
