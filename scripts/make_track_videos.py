"""Write the face-tracking benchmark videos: LFW faces moving over CMU-MIT scenes, with exact ground truth.

For each video NAME it writes ``NAME.mp4`` (640 × 480, 25 fps, mp4v), ``NAME.gt.txt`` (MOT ground truth:
``frame,id,x,y,w,h,1,1,visibility,-1``) and ``NAME.people.json`` (track id → ``{"name", "photo"}``; the LFW
person's other photos make a gallery that does not contain the frame's own photo).

    python scripts/make_track_videos.py [--out bench/results/track-videos] [--seed 0] [--only crossing static]

The same seed writes the same videos. See ``finegrain.track.synthetic`` for how faces are cut, moved and
calibrated against the face detector.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from finegrain.track.synthetic import (
    LFW_ROOT,
    SCENE_ROOT,
    PersonSpec,
    crossing_people,
    make_video,
    random_people,
)

REPO = Path(__file__).resolve().parents[1]
SIZE = (640, 480)
FPS = 25


def walk(frames: int) -> list[PersonSpec]:
    """Two people on gentle curves in separate halves of the frame: no crossing, one grows as it nears."""
    return [
        PersonSpec(start=(90, 120), end=(540, 150), via=(320, 90), size=(70, 70)),
        PersonSpec(start=(560, 370), end=(110, 340), via=(330, 400), size=(60, 100)),
    ]


def crossing(frames: int) -> list[PersonSpec]:
    """A nearer face passes in front of a farther one and hides it for about a second."""
    return crossing_people(frames, SIZE, near=110, far=70)


def pass_by(frames: int) -> list[PersonSpec]:
    """Two faces of about the same size cross with a vertical offset: one partly hides the other, and a
    tracker that follows position alone may swap them."""
    return [
        PersonSpec(start=(130, 200), end=(510, 240), size=(85, 85), z=0),
        PersonSpec(start=(510, 270), end=(130, 250), size=(90, 90), z=1),
    ]


def group(frames: int) -> list[PersonSpec]:
    """Four people on random curved paths at 40-120 px, crossing wherever their paths meet."""
    return random_people(4, frames, SIZE, seed=8)


def enter_exit(frames: int) -> list[PersonSpec]:
    """People come in from the edges and leave again, at different times: tracks must start and end."""
    return [
        PersonSpec(start=(-60, 200), end=(700, 230), size=(80, 80), frames=(1, int(0.6 * frames))),
        PersonSpec(start=(320, -60), end=(360, 540), via=(300, 240), size=(70, 90),
                   frames=(int(0.3 * frames), int(0.9 * frames))),
        PersonSpec(start=(700, 360), end=(420, 330), size=(100, 100), frames=(int(0.55 * frames), frames)),
    ]


def static(frames: int) -> list[PersonSpec]:
    """One face that never moves: every frame is the same image."""
    return [PersonSpec(start=(300, 220), size=(100, 100))]


# name → (people, seconds)
VIDEOS: dict[str, tuple[Callable[[int], list[PersonSpec]], float]] = {
    "walk": (walk, 10),
    "crossing": (crossing, 12),
    "pass-by": (pass_by, 12),
    "group": (group, 15),
    "enter-exit": (enter_exit, 15),
    "static": (static, 10),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "track-videos")
    parser.add_argument("--seed", type=int, default=0, help="chooses people, photos and scenes")
    parser.add_argument("--only", nargs="+", choices=sorted(VIDEOS), help="write only these videos")
    parser.add_argument("--lfw", type=Path, default=LFW_ROOT, help="LFW image folder (one folder per person)")
    parser.add_argument("--scenes", type=Path, default=SCENE_ROOT, help="folder of face-free background scenes")
    args = parser.parse_args()

    from finegrain.detect.faces import FaceDetector

    detector = FaceDetector.load()  # once: it calibrates every video's ground truth
    start = time.perf_counter()
    for k, (name, (people, seconds)) in enumerate(VIDEOS.items()):
        if args.only and name not in args.only:
            continue
        began = time.perf_counter()
        frames = round(seconds * FPS)
        # Each video has its own seed (the list position), so --only writes the same video as a full run.
        gt = make_video(args.out / f"{name}.mp4", people(frames), frames=frames, size=SIZE, fps=FPS,
                        seed=args.seed * 1000 + k, lfw_root=args.lfw, scene_root=args.scenes, detector=detector)
        gt_path, people_path = gt.write()
        hidden = sum(1 for r in gt.rows if r.vis is not None and r.vis < 0.1)
        who = ", ".join(f"{tid}={person}" for tid, person in sorted(gt.people.items()))
        print(f"{gt.video} ({frames} frames, {len(gt.rows)} boxes, {hidden} hidden, "
              f"{time.perf_counter() - began:.1f} s): {who}; scene {gt.scene.name if gt.scene else '-'}", flush=True)
        print(f"  {gt_path.name}, {people_path.name}", flush=True)
    print(f"done in {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
