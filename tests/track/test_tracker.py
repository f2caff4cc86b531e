"""The tracker on synthetic detections: births, deaths, a hidden face kept through a crossing, the vote."""

from __future__ import annotations

import numpy as np
import pytest

from finegrain.errors import ConfigError
from finegrain.track.tracker import Tracker, TrackerSettings


def _box(cx, cy, size=60):
    return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]


def test_a_static_face_is_one_track():
    tracker = Tracker()
    for frame in range(50):
        tracker.update(frame, np.array([_box(100, 100)]), np.array([0.9]))
    tracks = tracker.finish()
    assert len(tracks) == 1 and tracks[0].track_id == 1
    assert (tracks[0].first_frame, tracks[0].last_frame, len(tracks[0].observations)) == (0, 49, 50)


def test_births_need_min_hits_in_a_row_and_deaths_come_after_max_misses():
    tracker = Tracker(TrackerSettings(min_hits=3, max_misses=5))
    tracker.update(0, np.array([_box(300, 300)]), np.array([0.9]))  # a one-frame false detection
    for frame in range(1, 4):
        born = tracker.update(frame, np.array([_box(100, 100)]), np.array([0.9]))
        assert [t.track_id for t in born] == ([1] if frame == 3 else [])
    for frame in range(4, 10):  # unseen for 6 frames: more than max_misses
        tracker.update(frame, np.zeros((0, 4)), np.zeros(0))
    tracker.update(10, np.array([_box(100, 100)]), np.array([0.9]))  # starts a new tentative track
    tracks = tracker.finish()
    assert [t.track_id for t in tracks] == [1] and tracks[0].last_frame == 3


def test_a_face_hidden_behind_another_keeps_its_id():
    """Two faces cross; the one behind is not detected for 12 frames; each keeps its track."""
    rng = np.random.default_rng(0)
    look = {"ann": rng.normal(size=16), "bob": rng.normal(size=16)}
    look = {k: v / np.linalg.norm(v) for k, v in look.items()}
    tracker = Tracker(TrackerSettings(max_misses=20))
    truth = {}
    for frame in range(60):
        ann = _box(100 + 5 * frame, 200)  # left to right
        bob = _box(400 - 5 * frame, 205)  # right to left
        boxes, who = [ann], ["ann"]
        hidden = abs((100 + 5 * frame) - (400 - 5 * frame)) < 60  # bob is behind ann
        if not hidden:
            boxes.append(bob)
            who.append("bob")
        noise = [look[w] + 0.1 * rng.normal(size=16) for w in who]
        embeddings = np.array([v / np.linalg.norm(v) for v in noise])
        for track in tracker.update(frame, np.array(boxes), np.full(len(boxes), 0.9), embeddings):
            last = track.observations[-1].box
            person = who[int(np.argmin([abs(b[0] - last[0]) for b in boxes]))]
            truth.setdefault(track.track_id, set()).add(person)
    assert truth == {1: {"ann"}, 2: {"bob"}} or truth == {1: {"bob"}, 2: {"ann"}}
    bob = next(t for t in tracker.finish() if truth[t.track_id] == {"bob"})
    filled = bob.filled(20)
    assert [o.frame for o in filled] == list(range(filled[0].frame, 60))  # the hidden frames filled in
    assert sum(not o.detected for o in filled) >= 10


def test_the_identity_vote():
    tracker = Tracker(TrackerSettings(identity_threshold=0.6))
    votes = [("ann", 0.9)] * 5 + [("bob", 0.7)] * 2 + [("ann", 0.3)] * 2  # two frames too dissimilar to count
    for frame, identity in enumerate(votes):
        tracker.update(frame, np.array([_box(100, 100)]), np.array([0.9]), identities=[identity])
    track = tracker.finish()[0]
    assert track.identity == "ann" and track.confidence == pytest.approx(0.9)
    unknown = Tracker(TrackerSettings(identity_threshold=0.6))
    for frame in range(6):
        unknown.update(frame, np.array([_box(100, 100)]), np.array([0.9]), identities=[("ann", 0.4)])
    assert unknown.finish()[0].identity is None


def test_settings_name_the_flag():
    with pytest.raises(ConfigError, match="--min-hits"):
        TrackerSettings(min_hits=0)
    with pytest.raises(ConfigError, match="--appearance-weight"):
        TrackerSettings(appearance_weight=2)
