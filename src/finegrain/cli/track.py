"""``finegrain track`` (faces through a video) and ``finegrain track-eval`` (MOT metrics of tracks)."""

from __future__ import annotations

import json

from finegrain.cli.registry import arg, command


@command("track", "follow faces through a video and name each track against a gallery index",
         arg("video", help="video file (anything OpenCV reads: mp4, avi, mkv, ...)"),
         arg("--index", help="labelled gallery index (finegrain index): its model embeds the faces, its labels name "
                             "the tracks (without it: tracks without names, matched on a model-free descriptor)"),
         arg("--out", help="write the video with each track's box, id and identity drawn (.mp4 or .avi)"),
         arg("--json", dest="json_path", help="write the tracks as JSON (identity, first/last frame, boxes)"),
         arg("--mot", help="write the tracks in MOTChallenge text format (frame,id,x,y,w,h,conf,-1,-1,-1)"),
         arg("--every", type=int, default=1, help="detect on every N-th frame; tracks are carried between "
                                                  "(default: 1)"),
         arg("--detector", help="face detector file (default: the one bundled with finegrain)"),
         arg("--threshold", type=float, default=0.5,
             help="cosine similarity under which a frame votes 'unknown' (default: 0.5)"),
         arg("--min-hits", type=int, default=3, help="detections in a row before a track is born (default: 3)"),
         arg("--max-misses", type=int, default=50,
             help="frames a track survives unseen, e.g. hidden behind another face (default: 50)"),
         description="Detects faces (the bundled cascade), associates them to tracks by box overlap and appearance "
                     "with the Hungarian method, carries hidden faces with a constant-velocity motion model, and "
                     "names each track by a vote of its frames against the index ('unknown' under --threshold).")
def track_command(video: str, index: str | None = None, out: str | None = None, json_path: str | None = None,
                  mot: str | None = None, every: int = 1, detector: str | None = None, threshold: float = 0.5,
                  min_hits: int = 3, max_misses: int = 50) -> int:
    from finegrain.track.run import track_video
    from finegrain.track.tracker import TrackerSettings

    settings = TrackerSettings(min_hits=min_hits, max_misses=max_misses, identity_threshold=threshold)
    report = track_video(video, index=index, detector=detector, every=every, settings=settings, out=out,
                         json_path=json_path, mot=mot)
    print(f"{report['frames']} frames at {report['processing_fps']:.1f} frames/s: {len(report['tracks'])} tracks")
    for t in report["tracks"]:
        who = t["identity"] if t["identity"] is not None else "unknown"
        confidence = f" ({t['confidence']:.2f})" if t["confidence"] is not None else ""
        print(f"  track {t['id']}: {who}{confidence}  {t['start_s']:.2f}–{t['end_s']:.2f} s "
              f"(frames {t['first_frame']}–{t['last_frame']}, {t['detections']} detections)")
    for name, path in (("annotated video", out), ("tracks", json_path), ("MOT rows", mot)):
        if path:
            print(f"{name}: {path}")
    return 0


@command("track-eval", "MOTA, IDF1, ID switches, precision and recall of tracks against ground truth",
         arg("gt", help="ground truth in MOTChallenge text format"),
         arg("tracks", help="tracks in MOTChallenge text format (finegrain track --mot)"),
         arg("--iou", type=float, default=0.5, help="least box overlap for a match (default: 0.5)"),
         arg("--json", dest="as_json", action="store_true", help="print JSON"))
def track_eval_command(gt: str, tracks: str, iou: float = 0.5, as_json: bool = False) -> int:
    from finegrain.errors import ConfigError
    from finegrain.eval.tracking import mot_metrics
    from finegrain.track.mot import read_mot

    if not 0 < iou <= 1:
        raise ConfigError(f"--iou must be in (0, 1], got {iou}")
    metrics = mot_metrics(read_mot(gt), read_mot(tracks), iou=iou)
    if as_json:
        print(json.dumps(metrics, indent=2))
        return 0
    print(f"MOTA {metrics['mota']:.3f}  IDF1 {metrics['idf1']:.3f}  ID switches {metrics['id_switches']}  "
          f"precision {metrics['precision']:.3f}  recall {metrics['recall']:.3f}")
    return 0
