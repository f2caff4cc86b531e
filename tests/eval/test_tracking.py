"""Tracking metrics on hand-made sequences whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finegrain.eval.tracking import iou_distances, mot_metrics
from finegrain.track.mot import MotRow


def two_tracks(frames: int = 10) -> list[MotRow]:
    """Two faces far apart, each moving 2 px a frame."""
    return [MotRow(f, t, 200.0 * t + 2 * f, 50.0, 40.0, 40.0, 1.0, 1, 1.0) for f in range(1, frames + 1)
            for t in (1, 2)]


def test_a_perfect_tracker_scores_one():
    gt = two_tracks()
    hyp = [MotRow(r.frame, r.track_id + 10, r.x, r.y, r.w, r.h, 0.9) for r in gt]  # ids need only be consistent
    m = mot_metrics(gt, hyp)
    assert m["mota"] == 1 and m["idf1"] == 1 and m["id_switches"] == 0
    assert m["precision"] == 1 and m["recall"] == 1 and m["mean_iou"] == pytest.approx(1)
    assert (m["num_frames"], m["num_gt"], m["num_tracks"], m["mostly_tracked"]) == (10, 20, 2, 2)


def test_one_identity_change_is_one_switch():
    gt = [r for r in two_tracks() if r.track_id == 1]
    hyp = [MotRow(r.frame, 1 if r.frame <= 5 else 9, r.x, r.y, r.w, r.h) for r in gt]  # new id half-way
    m = mot_metrics(gt, hyp)
    assert m["id_switches"] == 1
    assert m["idf1"] == pytest.approx(0.5)  # the best single hypothesis covers half the track
    assert m["mota"] == pytest.approx(1 - 1 / 10) and m["recall"] == 1


def test_two_tracks_swapping_ids_is_a_switch_for_each():
    gt = two_tracks()
    hyp = [MotRow(r.frame, r.track_id if r.frame <= 5 else 3 - r.track_id, r.x, r.y, r.w, r.h) for r in gt]
    m = mot_metrics(gt, hyp)
    assert m["id_switches"] == 2 and m["idf1"] == pytest.approx(0.5) and m["precision"] == 1


def test_missing_half_the_boxes_halves_recall():
    gt = two_tracks()
    hyp = [r for r in gt if r.frame % 2 == 0]
    m = mot_metrics(gt, hyp)
    assert m["recall"] == pytest.approx(0.5) and m["precision"] == 1 and m["id_switches"] == 0
    assert m["misses"] == 10 and m["mota"] == pytest.approx(0.5)


def test_iou_threshold_decides_a_match():
    gt = [MotRow(1, 1, 0, 0, 10, 10)]
    shifted = [MotRow(1, 1, 3, 0, 10, 10)]  # IoU 70 / 130 ≈ 0.54
    assert mot_metrics(gt, shifted, iou=0.5)["recall"] == 1
    m = mot_metrics(gt, shifted, iou=0.6)
    assert m["recall"] == 0 and m["false_positives"] == 1
    assert iou_distances(np.array([[0, 0, 10, 10]]), np.array([[3, 0, 10, 10], [50, 50, 5, 5]]), 0.5) == \
        pytest.approx(np.array([[1 - 70 / 130, math.nan]]), nan_ok=True)


def test_hidden_faces_count_unless_told_otherwise():
    gt = two_tracks()
    gt = [MotRow(r.frame, r.track_id, r.x, r.y, r.w, r.h, 1.0, 1, 0.0 if r.track_id == 2 and r.frame > 5 else 1.0)
          for r in gt]
    coasting = list(gt)  # keeps reporting the hidden face
    dropping = [r for r in gt if r.vis > 0]  # loses it while hidden
    assert mot_metrics(gt, dropping)["recall"] == pytest.approx(15 / 20)
    assert mot_metrics(gt, coasting)["recall"] == 1
    # As "don't care": neither the coasting boxes nor the missed ones count.
    for hyp in (coasting, dropping):
        m = mot_metrics(gt, hyp, min_visibility=0.5)
        assert m["recall"] == 1 and m["precision"] == 1 and m["num_gt"] == 15 and m["false_positives"] == 0


def test_empty_frames_and_duplicate_ids():
    gt = [MotRow(2, 1, 0, 0, 10, 10)]
    m = mot_metrics(gt, [], num_frames=5)
    assert m["num_frames"] == 5 and m["recall"] == 0 and math.isnan(m["precision"])
    with pytest.raises(ValueError, match="more than once in frame 2"):
        mot_metrics(gt, [MotRow(2, 4, 0, 0, 10, 10), MotRow(2, 4, 20, 0, 10, 10)])
