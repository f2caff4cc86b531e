"""Face tracking on the generated benchmark videos: MOTA, IDF1, ID switches, precision, recall, frames/s.

    .venv/bin/python scripts/make_track_videos.py                 # writes bench/results/track-videos/ (~20 s)
    .venv/bin/python bench/track.py [--every 1,2] [--model RUN]   # this table

Each video is tracked by ``finegrain track`` (its defaults: the bundled detector on every frame, or every N-th,
Hungarian association on box overlap and a model-free appearance descriptor, a constant-velocity motion model,
birth after 3 detections, death after 50 unseen frames) and, in the same run on the same detections, by what a
user would write instead: each detection joins the track whose last box it overlaps most (IoU ≥ 0.3, greedy),
else starts a new one; a track ends the first frame it is not seen. Metrics by ``finegrain.eval.tracking``
(motmetrics, IoU ≥ 0.5, every ground-truth row counted, hidden ones too). Frames/s: the whole ``track_video``
(decode, detect, embed, associate), one process, 2 threads. With ``--model RUN``, each video's people are also
named against a gallery of their *other* LFW photos embedded by that model, and the table gives the share of
tracks named right (the person a track overlaps most in the ground truth). Appends to bench/results/track.jsonl.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from finegrain.boxes import drop_nested, iou_matrix
from finegrain.detect.faces import FaceDetector
from finegrain.eval.tracking import mot_metrics
from finegrain.track.mot import MotRow, read_mot
from finegrain.track.run import track_video
from finegrain.track.synthetic import LFW_ROOT, person_photos
from finegrain.track.tracker import TrackerSettings
from finegrain.track.video import read_frames

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO / "bench" / "results" / "track-videos"


def naive_tracks(video: Path, detector: FaceDetector) -> tuple[list[MotRow], float]:
    """Frame-to-frame greedy IoU matching, no motion, no appearance: the plain baseline."""
    frames, *_ = read_frames(video)
    rows, last, next_id = [], {}, 1
    started = time.perf_counter()
    n = 0
    for index, frame in enumerate(frames):
        n += 1
        faces = detector.detect(frame)
        boxes = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
        scores = np.array([f.score for f in faces])
        keep = drop_nested(boxes, scores)
        boxes = boxes[keep]
        current = {}
        ids = list(last)
        overlap = iou_matrix(np.array([last[i] for i in ids]).reshape(-1, 4), boxes)
        for d in np.argsort(-(overlap.max(axis=0) if len(ids) else np.zeros(len(boxes)))):
            best = int(np.argmax(overlap[:, d])) if len(ids) else -1
            if best >= 0 and overlap[best, d] >= 0.3 and ids[best] not in current:
                track_id = ids[best]
                overlap[best, :] = -1
            else:
                track_id, next_id = next_id, next_id + 1
            current[track_id] = boxes[d]
            rows.append(MotRow.from_box(index + 1, track_id, boxes[d], conf=1.0))
        last = current
    return rows, n / (time.perf_counter() - started)


def gallery_for(video: Path, model: str, out: Path) -> Path:
    """An index of each person's LFW photos other than the one pasted into the video."""
    from finegrain.index.build import index_gallery

    people = json.loads(video.with_suffix(".people.json").read_text())
    folder = out / f"{video.stem}-gallery"
    for entry in people.values():
        (folder / entry["name"]).mkdir(parents=True, exist_ok=True)
        for photo in person_photos(LFW_ROOT, entry["name"]):
            if f"{photo.parent.name}/{photo.name}" != entry["photo"]:
                (folder / entry["name"] / photo.name).symlink_to(photo.resolve())
    index_gallery(model, folder, out / f"{video.stem}.idx", progress=False)
    return out / f"{video.stem}.idx"


def named_right(report: dict, gt: list[MotRow], people: dict) -> float:
    right = 0
    for track in report["tracks"]:
        votes: dict[int, int] = {}
        for frame, *box in track["boxes"]:
            rows = [r for r in gt if r.frame == frame]
            if rows:
                overlap = iou_matrix(np.array([box]), np.array([r.box for r in rows]))[0]
                if overlap.max() >= 0.5:
                    who = rows[int(np.argmax(overlap))].track_id
                    votes[who] = votes.get(who, 0) + 1
        person = max(votes, key=votes.get) if votes else None
        right += person is not None and track["identity"] == people[str(person)]["name"]
    return right / max(len(report["tracks"]), 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, default=VIDEOS)
    parser.add_argument("--every", default="1,2", help="comma list of --every values (default: 1,2)")
    parser.add_argument("--model", help="an embedding run: name the tracks against the people's other photos")
    parser.add_argument("--max-misses", help="comma list of --max-misses values to compare (default: the tracker's); "
                                             "used to choose the default on validation videos (another --seed)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain IoU matcher")
    args = parser.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    videos = sorted(args.videos.glob("*.mp4"))
    if not videos:
        sys.exit(f"no videos in {args.videos}: run scripts/make_track_videos.py first")
    print(command)
    detector = FaceDetector.load()
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        for video in videos:
            gt = read_mot(video.with_suffix(".gt.txt"))
            people = json.loads(video.with_suffix(".people.json").read_text())
            index = gallery_for(video, args.model, Path(tmp)) if args.model else None
            misses = [int(m) for m in args.max_misses.split(",")] if args.max_misses else [None]
            for every, max_misses in ((int(e), m) for e in args.every.split(",") for m in misses):
                settings = TrackerSettings() if max_misses is None else TrackerSettings(max_misses=max_misses)
                report = track_video(video, index=index, every=every, mot=Path(tmp) / "t.txt", progress=False,
                                     settings=settings)
                m = mot_metrics(gt, read_mot(Path(tmp) / "t.txt"))
                name = f"finegrain --every {every}" + (f" --max-misses {max_misses}" if max_misses else "")
                row = {"video": video.stem, "tracker": name, "fps": report["processing_fps"],
                       **{k: m[k] for k in ("mota", "idf1", "id_switches", "precision", "recall")},
                       "tracks": len(report["tracks"]), "people": len(people)}
                if index:
                    row["named_right"] = named_right(report, gt, people)
                rows_out.append(row)
            if args.no_baseline:
                continue
            naive, fps = naive_tracks(video, detector)
            m = mot_metrics(gt, naive)
            rows_out.append({"video": video.stem, "tracker": "plain IoU matcher", "fps": fps,
                             **{k: m[k] for k in ("mota", "idf1", "id_switches", "precision", "recall")},
                             "tracks": len({r.track_id for r in naive}), "people": len(people)})
    head = "| video | tracker | MOTA | IDF1 | ID sw. | precision | recall | tracks / people | frames/s |"
    named = " named right |" if args.model else ""
    print(head + named)
    print("|" + "---|" * (9 + bool(args.model)))
    for r in rows_out:
        extra = f" {r['named_right']:.2f} |" if "named_right" in r else (" – |" if args.model else "")
        print(f"| {r['video']} | {r['tracker']} | {r['mota']:.3f} | {r['idf1']:.3f} | {r['id_switches']} | "
              f"{r['precision']:.3f} | {r['recall']:.3f} | {r['tracks']} / {r['people']} | {r['fps']:.1f} |{extra}")
    print("\n| tracker | mean MOTA | mean IDF1 | ID switches (all videos) |\n|---|---|---|---|")
    for name in dict.fromkeys(r["tracker"] for r in rows_out):
        mine = [r for r in rows_out if r["tracker"] == name]
        print(f"| {name} | {np.mean([r['mota'] for r in mine]):.3f} | {np.mean([r['idf1'] for r in mine]):.3f} | "
              f"{sum(r['id_switches'] for r in mine)} |")
    out = REPO / "bench" / "results" / "track.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps({"command": command, "rows": rows_out}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
