"""Synthetic test videos: paths, visibility and ground truth, and (with the shared data) that the face detector
finds the pasted faces where the ground truth says they are."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from finegrain.boxes import iou_matrix
from finegrain.track.mot import read_mot
from finegrain.track.synthetic import (
    LFW_ROOT,
    SCENE_ROOT,
    PersonSpec,
    PhotoFace,
    crossing_people,
    face_mask,
    make_video,
    person_photos,
    random_people,
    read_people,
    render,
)

SIZE = (320, 240)  # small frames keep the detector quick; faces are still 50-80 px
FRAMES = 40


def shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path} (the shared data folder sits beside the repository)")
    return path


def fake_photo(box=(20.0, 20.0, 92.0, 92.0), value: int = 200) -> PhotoFace:
    """A flat 112 × 112 "photo" with a known face box: enough to check geometry without the data or detector."""
    return PhotoFace(Path("fake/fake_0001.jpg"), np.full((112, 112, 3), value, np.uint8), box, 1.0)


def read_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


# ---- geometry, no data needed ----


def test_paths_are_straight_or_pass_through_via():
    line = PersonSpec(start=(0, 0), end=(100, 50), size=(40, 80))
    assert line.at(1, 11) == (0, 0, 40) and line.at(11, 11) == (100, 50, 80) and line.at(6, 11) == (50, 25, 60)
    curve = PersonSpec(start=(0, 0), end=(100, 0), via=(50, 30), frames=(3, 13))
    assert curve.at(2, 20) is None and curve.at(14, 20) is None
    assert curve.at(8, 20) == pytest.approx((50, 30, 80))  # half-way through its frames it is at ``via``
    assert PersonSpec(start=(5, 6)).at(7, 9) == (5, 6, 80)  # no end: it stays put


def test_mask_is_soft_inside_the_photo():
    mask = face_mask((112, 112), (20, 20, 92, 92))
    assert mask[56, 56] == 1 and mask[0, 0] == 0 and mask[56, 0] == 0  # solid centre, clear corners and border
    assert 0 < mask[56, 93] < 1  # a soft edge just outside the box


def test_visibility_counts_the_frame_edge_and_faces_in_front():
    size = (200, 100)
    base = np.zeros((100, 200, 3), np.uint8)
    people = [
        (PersonSpec(start=(50, 50), size=(40, 40)), fake_photo()),  # alone, inside
        (PersonSpec(start=(0, 50), size=(40, 40)), fake_photo()),  # half past the left edge
        (PersonSpec(start=(150, 50), size=(20, 20)), fake_photo()),  # behind the next one
        (PersonSpec(start=(150, 50), size=(60, 60), z=1), fake_photo(value=90)),
    ]
    image, rows = next(render(base, people, 1, size))
    by_id = {r.track_id: r for r in rows}
    assert by_id[1].vis == 1 and (by_id[1].x, by_id[1].w) == (30, 40)
    assert by_id[2].vis == pytest.approx(0.5, abs=0.01) and (by_id[2].x, by_id[2].w) == (0, 20)  # clipped box
    assert by_id[3].vis == 0 and by_id[4].vis == 1
    assert tuple(image[50, 150]) == (90, 90, 90)  # the nearer face is the one drawn
    assert all(r.conf == 1 and r.label == 1 for r in rows)


def test_nobody_off_screen_is_in_the_ground_truth():
    people = [(PersonSpec(start=(-100, 50), end=(100, 50), size=(40, 40)), fake_photo())]
    rows = [r for _, frame_rows in render(np.zeros((100, 200, 3), np.uint8), people, 5, (200, 100))
            for r in frame_rows]
    assert [r.frame for r in rows] == [3, 4, 5]  # the box's centre is at x = -100, -50, 0, 50, 100


def test_random_people_stay_inside_the_frame():
    for spec in random_people(5, 50, (640, 480), seed=3):
        for frame in (1, 13, 25, 37, 50):
            cx, cy, width = spec.at(frame, 50)
            assert 40 <= width <= 120
            assert width / 2 <= cx <= 640 - width / 2 and width / 2 <= cy <= 480 - width / 2


# ---- real photos and scenes ----


@pytest.fixture(scope="module")
def detector():
    from finegrain.detect.faces import FaceDetector

    return FaceDetector.load()


@pytest.fixture(scope="module")
def crossing(tmp_path_factory, detector):
    shared(LFW_ROOT)
    shared(SCENE_ROOT)
    path = tmp_path_factory.mktemp("videos") / "crossing.mp4"
    gt = make_video(path, crossing_people(FRAMES, SIZE, near=80, far=50), frames=FRAMES, size=SIZE, seed=1,
                    detector=detector)
    return gt, read_frames(path)


def test_crossing_video_reads_back_with_its_ground_truth(crossing, tmp_path):
    gt, frames = crossing
    assert len(frames) == FRAMES and frames[0].shape == (SIZE[1], SIZE[0], 3)
    assert sorted(gt.people) == [1, 2] and len(set(gt.people.values())) == 2
    for tid, name in gt.people.items():
        assert len(gt.track(tid)) == FRAMES and gt.photos[tid] in person_photos(LFW_ROOT, name)
        # The person has other photos, so a gallery need not contain the one in the video.
        assert [p for p in person_photos(LFW_ROOT, name) if p != gt.photos[tid]]
    gt_path, people_path = gt.write(tmp_path / "c.gt.txt", tmp_path / "c.people.json")
    assert read_mot(gt_path) == gt.rows and read_people(people_path) == gt.people


def test_the_far_face_is_hidden_while_the_near_one_passes(crossing):
    gt, _ = crossing
    far = np.array([r.vis for r in gt.track(1)])
    hidden = np.flatnonzero(far < 0.1) + 1
    assert len(hidden) >= 3 and np.all(np.diff(hidden) == 1)  # one stretch of several frames...
    assert abs(hidden.mean() - (FRAMES + 1) / 2) <= 1  # ...around the crossing, half-way through
    assert far[:5].min() == 1 and far[-5:].min() == 1
    assert min(r.vis for r in gt.track(2)) == 1  # nothing passes in front of the near face


def test_the_detector_finds_the_faces_at_the_ground_truth_boxes(crossing, detector):
    gt, frames = crossing
    hidden = [r.frame for r in gt.track(1) if r.vis < 0.1]
    visible_ious, hidden_ious = [], []
    for frame in sorted({*range(1, FRAMES + 1, 6), hidden[len(hidden) // 2]}):  # 8 frames: ~1 s each
        found = np.array([f.box for f in detector.detect(frames[frame - 1])]).reshape(-1, 4)
        for row in gt.frame(frame):
            iou = iou_matrix(np.array([row.box]), found).max(initial=0.0)
            if row.vis >= 0.9:
                visible_ious.append(iou)
            elif row.vis < 0.1:
                hidden_ious.append(iou)
    visible_ious = np.array(visible_ious)
    # Measured here (seed 1): every visible face found, IoU median 0.82 (0.65-0.89). Over longer benchmark videos
    # the detector misses a pasted face in a few percent of frames and its box jitters by a pyramid step, hence
    # the margins.
    assert len(visible_ious) >= 10
    assert np.mean(visible_ious >= 0.5) >= 0.7
    assert np.median(visible_ious[visible_ious >= 0.5]) >= 0.65
    assert hidden_ious and max(hidden_ious) < 0.5  # a hidden face is not there to find


def test_a_static_video_is_one_image_with_one_track(tmp_path, detector):
    shared(LFW_ROOT)
    shared(SCENE_ROOT)
    spec = [PersonSpec(start=(160, 110), size=(70, 70))]
    videos = [make_video(tmp_path / f"still{i}.avi", spec, frames=12, size=SIZE, seed=4, detector=detector)
              for i in range(2)]
    gt = videos[0]
    assert list(gt.people) == [1] and {r.track_id for r in gt.rows} == {1} and len(gt.rows) == 12
    assert len({(r.x, r.y, r.w, r.h, r.vis) for r in gt.rows}) == 1
    frames = read_frames(gt.video)
    # MJPG codes every frame alone, so identical frames decode identically, except that FFmpeg's rate control
    # codes the first one at another quality (measured: 14 vs 17 kB, mean difference 2.4 grey levels).
    assert len(frames) == 12 and all(np.array_equal(frames[1], f) for f in frames[1:])
    assert np.abs(frames[0].astype(int) - frames[1]).mean() < 5
    # The same seed, the same video: people, photo, scene and ground truth.
    assert videos[1].rows == gt.rows and videos[1].photos == gt.photos and videos[1].scene == gt.scene
    assert np.array_equal(read_frames(videos[1].video)[1], frames[1])
