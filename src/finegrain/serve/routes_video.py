"""``POST /track``: faces through a short uploaded clip, each track named against a collection."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from finegrain.index.gallery import GalleryIndex
from finegrain.serve.collections import check_name
from finegrain.serve.requests import check_threshold, service
from finegrain.serve.uploads import ApiError
from finegrain.track.run import track_report
from finegrain.track.tracker import TrackerSettings
from finegrain.track.video import FaceTracker, VideoError, read_frames

router = APIRouter()
MAX_FRAMES = 1500  # a minute at 25 fps: longer clips are for `finegrain track`, not one request


def _snapshot(collection) -> GalleryIndex:
    """A copy of the collection's gallery, so adds during a long clip neither wait nor change its answers."""
    with collection.lock:
        gallery = GalleryIndex(collection.gallery.dim, meta=list(collection.gallery.meta),
                               binding=collection.gallery.binding)
        gallery.index.add(collection.gallery.vectors())
    return gallery


def _track(engine, data: bytes, name: str, gallery: GalleryIndex | None, every: int, threshold: float) -> dict:
    settings = TrackerSettings(identity_threshold=threshold)
    tracker = FaceTracker(engine.detector, engine.embedder if gallery is not None else None, gallery, settings, every)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip"
        path.write_bytes(data)
        try:
            frames, count, fps, size = read_frames(path)
        except VideoError:
            raise ApiError(415, f"{name}: not a readable video, or it has no frames", file=name) from None
        if count > MAX_FRAMES:
            raise ApiError(413, f"{name}: {count} frames; this route takes clips of up to {MAX_FRAMES} "
                                "(use 'finegrain track' for longer videos)", file=name)
        n = 0
        for frame in frames:
            n += 1
            if n > MAX_FRAMES:
                raise ApiError(413, f"{name}: more than {MAX_FRAMES} frames", file=name)
            tracker.process(frame)
    tracks = tracker.finish()
    return {"frames": n, "fps": fps, "width": size[0], "height": size[1],
            "tracks": track_report(tracks, fps, settings.max_misses)}


@router.post("/track")
async def track(request: Request, file: UploadFile = File(...), collection: str | None = Form(None),
                every: int = Form(1), threshold: float | None = Form(None)):
    """Tracks of every face in a short clip (``file``), each named against ``collection`` when given."""
    svc = service(request)
    if not 1 <= every <= 100:
        raise ApiError(422, f"every must be between 1 and 100, got {every}")
    gallery = None
    if collection is not None:
        chosen = svc.collections().get(check_name(collection))
        if not chosen.has_labels():
            raise ApiError(409, f"collection {collection!r} has no labelled items, so it cannot name anyone")
        gallery = _snapshot(chosen)
    default = svc.engine.threshold.value if svc.engine.threshold else 0.5
    data = await file.read()
    # Not on the model thread: a clip takes seconds to minutes, and other requests keep their turn meanwhile.
    return await run_in_threadpool(_track, svc.engine, data, file.filename or "file", gallery, every,
                                   check_threshold(threshold, default))
