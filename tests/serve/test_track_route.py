"""``POST /track``: a short clip's face tracks, named against a collection; bad clips are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from finegrain.track.synthetic import LFW_ROOT, SCENE_ROOT, crossing_people, make_video, person_photos


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    for path in (LFW_ROOT, SCENE_ROOT):
        if not Path(path).exists():
            pytest.skip(f"real data not available: {path} (the shared data folder sits beside the repository)")
    path = tmp_path_factory.mktemp("clip") / "crossing.avi"
    return path, make_video(path, crossing_people(60, (320, 240), near=70, far=50), frames=60, size=(320, 240),
                            seed=3)


@pytest.mark.slow
def test_track_a_clip_against_a_collection(client_for, clip):
    video, gt = clip
    client = client_for()
    client.post("/collections", json={"name": "people"})
    for track_id, name in gt.people.items():
        others = [p for p in person_photos(LFW_ROOT, name) if p.name != gt.photos[track_id].name][:2]
        files = [("files", (p.name, p.read_bytes())) for p in others]
        assert client.post("/collections/people/items", files=files, data={"label": name}).status_code == 201
    body = client.post("/track", files={"file": ("clip.avi", video.read_bytes())},
                       data={"collection": "people"}).json()
    assert body["frames"] == 60 and (body["width"], body["height"]) == (320, 240)
    assert len(body["tracks"]) == 2
    for track in body["tracks"]:
        assert track["identity"] in set(gt.people.values()) | {None} and track["confidence"] is not None
        assert track["first_frame"] >= 1 and track["boxes"]
    unnamed = client.post("/track", files={"file": ("clip.avi", video.read_bytes())}, data={"every": "2"}).json()
    assert len(unnamed["tracks"]) >= 2 and all(t["identity"] is None for t in unnamed["tracks"])


def test_bad_clips_are_named(client_for):
    client = client_for()
    text = client.post("/track", files={"file": ("clip.mp4", b"not a video at all")})
    assert text.status_code == 415 and "clip.mp4: not a readable video" in text.json()["error"]
    assert client.post("/track", files={"file": ("c.mp4", b"x")}, data={"every": "0"}).status_code == 422
    assert client.post("/track", files={"file": ("c.mp4", b"x")}, data={"collection": "nobody"}).status_code == 404
