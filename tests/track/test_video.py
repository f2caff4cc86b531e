"""Tracking generated videos end to end: a face crossing behind another keeps its id, a static face is one
track, the MOT file reads back as the tracks, bad videos are named, and the Python API over frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from finegrain.boxes import iou_matrix
from finegrain.cli import main
from finegrain.eval.tracking import mot_metrics
from finegrain.track import FaceTracker
from finegrain.track.mot import read_mot
from finegrain.track.run import track_video
from finegrain.track.synthetic import LFW_ROOT, SCENE_ROOT, PersonSpec, crossing_people, make_video
from finegrain.track.video import VideoError, read_frames

SIZE = (320, 240)


def _needs_data():
    for path in (LFW_ROOT, SCENE_ROOT):
        if not Path(path).exists():
            pytest.skip(f"real data not available: {path} (the shared data folder sits beside the repository)")


@pytest.fixture(scope="module")
def crossing(tmp_path_factory):
    _needs_data()
    path = tmp_path_factory.mktemp("videos") / "crossing.avi"
    gt = make_video(path, crossing_people(90, SIZE, near=70, far=50), frames=90, size=SIZE, seed=3)
    return path, gt


@pytest.mark.slow
def test_a_face_crossing_behind_another_keeps_its_identity(crossing, tmp_path):
    video, gt = crossing
    hidden = [r for r in gt.track(1) if r.vis is not None and r.vis < 0.1]
    assert len(hidden) >= 5, "the generated crossing must hide track 1 for several frames"
    report = track_video(video, mot=tmp_path / "tracks.txt", json_path=tmp_path / "tracks.json", progress=False)
    metrics = mot_metrics(gt.rows, read_mot(tmp_path / "tracks.txt"))
    assert metrics["id_switches"] == 0 and metrics["idf1"] > 0.8 and metrics["mota"] > 0.6, metrics
    assert len(report["tracks"]) == 2  # no third track for the face that came back out


@pytest.mark.slow
def test_the_mot_file_reads_back_as_the_tracks(crossing, tmp_path):
    video, _ = crossing
    report = track_video(video, mot=tmp_path / "t.txt", json_path=tmp_path / "t.json", progress=False)
    rows = read_mot(tmp_path / "t.txt")
    from_json = sorted((b[0], t["id"], *b[1:]) for t in json.loads((tmp_path / "t.json").read_text())["tracks"]
                       for b in t["boxes"])
    from_mot = sorted((r.frame, r.track_id, *(round(v, 1) for v in r.box)) for r in rows)
    assert [(f, i) for f, i, *_ in from_mot] == [(f, i) for f, i, *_ in from_json]
    np.testing.assert_allclose([b for *_, b in [(f, i, box) for f, i, *box in from_mot]],
                               [b for *_, b in [(f, i, box) for f, i, *box in from_json]], atol=0.051)
    assert {r.track_id for r in rows} == {t["id"] for t in report["tracks"]} and min(r.frame for r in rows) >= 1


@pytest.mark.slow
def test_a_static_image_repeated_is_one_track(tmp_path):
    """The face is one track from the first frame to the last; so is anything else the detector keeps finding
    in the scene (a false detection that never moves): nothing fragments."""
    _needs_data()
    video = tmp_path / "static.avi"
    gt = make_video(video, [PersonSpec(start=(160, 120), size=(80, 80))], frames=40, size=SIZE, seed=1)
    report = track_video(video, progress=False)
    face = gt.rows[0].box
    on_face = [t for t in report["tracks"] if iou_matrix(np.array([t["boxes"][0][1:]]), np.array([face]))[0, 0] > 0.5]
    assert len(on_face) == 1
    assert all((t["first_frame"], t["last_frame"], t["detections"]) == (1, 40, 40) for t in report["tracks"])


@pytest.mark.slow
def test_every_other_frame_carries_tracks_between(crossing, tmp_path):
    video, gt = crossing
    track_video(video, every=2, mot=tmp_path / "every2.txt", progress=False)
    rows = read_mot(tmp_path / "every2.txt")
    assert any(r.frame % 2 == 0 for r in rows) and any(r.frame % 2 == 1 for r in rows)  # frames 1, 3, … detected
    assert mot_metrics(gt.rows, rows)["id_switches"] == 0


def test_the_python_api_over_frames(crossing):
    video, _ = crossing
    frames, *_ = read_frames(video)
    tracker = FaceTracker.create()
    seen = {face.track_id for frame in frames for face in tracker.process(frame)}
    tracks = tracker.finish()
    assert seen == {t.track_id for t in tracks} and len(tracks) == 2


def test_a_gallery_names_the_tracks(crossing, make_model, tmp_path):
    """Any labelled index works: each track gets one of its labels or "unknown" (a random model: no accuracy)."""
    from finegrain.index.build import index_gallery
    from finegrain.track.synthetic import person_photos

    video, gt = crossing
    folder = tmp_path / "gallery"
    for track_id, name in gt.people.items():
        others = [p for p in person_photos(LFW_ROOT, name) if p.name != gt.photos[track_id].name]
        for photo in others[:3]:
            (folder / name).mkdir(parents=True, exist_ok=True)
            (folder / name / photo.name).write_bytes(photo.read_bytes())
    index_gallery(make_model(tmp_path / "m.safetensors"), folder, tmp_path / "people.idx", progress=False)
    report = track_video(video, index=tmp_path / "people.idx", progress=False)
    assert report["tracks"] and all(t["identity"] in set(gt.people.values()) | {None} for t in report["tracks"])
    assert all(t["confidence"] is not None for t in report["tracks"])


def test_bad_videos_are_named(tmp_path, capsys):
    with pytest.raises(VideoError, match="no such video file"):
        read_frames(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    for name in ("empty.mp4", "text.mp4"):
        assert main(["track", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{name}: not a readable video" in err
    assert main(["track", str(tmp_path / "text.mp4"), "--every", "0"]) == 2
    assert "--every" in capsys.readouterr().err
