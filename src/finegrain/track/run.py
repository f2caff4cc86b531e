"""``finegrain track``: a video in; tracks with identities out (JSON, MOTChallenge rows, an annotated video)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from finegrain.drawing import draw_label
from finegrain.track.mot import MotRow, write_mot
from finegrain.track.tracker import Track, TrackerSettings
from finegrain.track.video import FaceTracker, read_frames
from finegrain.utils import atomic_write, atomic_write_text, progress_bar

COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def track_rows(tracks: list[Track], max_gap: int) -> list[MotRow]:
    """MOTChallenge rows (frames from 1) of every track, hidden and skipped frames filled in by motion."""
    rows = []
    for track in tracks:
        for obs in track.filled(max_gap):
            x1, y1, x2, y2 = obs.box
            rows.append(MotRow(obs.frame + 1, track.track_id, x1, y1, x2 - x1, y2 - y1, obs.score))
    return sorted(rows, key=lambda r: (r.frame, r.track_id))


def track_report(tracks: list[Track], fps: float, max_gap: int) -> list[dict[str, Any]]:
    return [{"id": t.track_id, "identity": t.identity, "confidence": t.confidence,
             "first_frame": t.first_frame + 1, "last_frame": t.last_frame + 1,
             "start_s": round(t.first_frame / fps, 3), "end_s": round(t.last_frame / fps, 3),
             "detections": sum(o.detected for o in t.observations),
             "boxes": [[o.frame + 1, *(round(v, 1) for v in o.box)] for o in t.filled(max_gap)]} for t in tracks]


def track_video(video: str | Path, index: str | Path | None = None, detector: str | Path | None = None,
                every: int = 1, settings: TrackerSettings | None = None, out: str | Path | None = None,
                json_path: str | Path | None = None, mot: str | Path | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Track every face of ``video``; write what was asked for; return the report."""
    settings = settings or TrackerSettings()
    tracker = FaceTracker.create(index, detector, settings, every)
    frames, count, fps, size = read_frames(video)
    bar = progress_bar(total=count or None, enabled=progress, desc=f"tracking {Path(video).name}", unit="frame")
    started, n = time.perf_counter(), 0
    for frame in frames:
        tracker.process(frame)
        n += 1
        bar.update(1)
        if n % 10 == 0:
            bar.set_postfix(fps=f"{n / (time.perf_counter() - started):.1f}")
    bar.close()
    seconds = time.perf_counter() - started
    tracks = tracker.finish()
    report = {"video": str(video), "frames": n, "fps": fps, "width": size[0], "height": size[1],
              "processing_fps": n / seconds if seconds else None, "every": every,
              "index": str(index) if index else None,
              "tracks": track_report(tracks, fps, settings.max_misses)}
    if json_path:
        atomic_write_text(Path(json_path), json.dumps(report, indent=2))
    if mot:
        write_mot(Path(mot), track_rows(tracks, settings.max_misses))
    if out:
        annotate(video, Path(out), tracks, settings.max_misses, fps, progress)
    return report


def annotate(video: str | Path, out: Path, tracks: list[Track], max_gap: int, fps: float, progress: bool) -> Path:
    """A copy of the video with each track's box, id and identity (decided over the whole track) drawn."""
    by_frame: dict[int, list[tuple[Track, tuple]]] = {}
    for track in tracks:
        for obs in track.filled(max_gap):
            by_frame.setdefault(obs.frame, []).append((track, obs.box))
    frames, count, _, size = read_frames(video)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if out.suffix.lower() in (".mp4", ".m4v", ".mov") else "MJPG"))

    def write(tmp: Path) -> None:
        staging = tmp.with_suffix(out.suffix)  # OpenCV picks the container from the extension
        writer = cv2.VideoWriter(str(staging), fourcc, fps, size)
        try:
            for i, frame in enumerate(progress_bar(frames, enabled=progress, total=count or None,
                                                   desc="writing annotated video", unit="frame")):
                writer.write(cv2.cvtColor(_draw(frame, by_frame.get(i, [])), cv2.COLOR_RGB2BGR))
            writer.release()
            staging.replace(tmp)
        finally:
            writer.release()
            staging.unlink(missing_ok=True)

    atomic_write(out, write)
    return out


def _draw(frame: np.ndarray, faces: list[tuple[Track, tuple]]) -> np.ndarray:
    image = np.ascontiguousarray(frame.copy())
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for track, box in faces:
        colour = COLOURS[(track.track_id - 1) % len(COLOURS)]
        x1, y1, x2, y2 = (round(v) for v in box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
        name = track.identity if track.identity is not None else "unknown"
        image = draw_label(image, f"{track.track_id}: {name}", (x1, max(0, y1 - 18)), colour)
    return image
