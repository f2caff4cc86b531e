"""Omniglot benchmark: train on images_background (964 characters), 20-way one-shot on Lake's 20 runs.

    .venv/bin/python bench/omniglot.py [--rotations 4] [train flags, e.g. --epochs 13]

Prints one-shot accuracy, training wall time, training images/s and embedding images/s, with the
exact command, and writes bench/results/omniglot.json. Training flags are those of
``finegrain train``; the defaults below are the benchmarked configuration.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from finegrain.cli.registry import config_args
from finegrain.config import TrainConfig
from finegrain.data.cache import default_cache_dir
from finegrain.encoders import load_encoder
from finegrain.fewshot.oneshot import oneshot_accuracy, read_runs
from finegrain.train.run import train
from finegrain.utils import extract_zip_once

SHARED = Path(__file__).resolve().parents[2] / "shared/data/omniglot"
BENCH_DEFAULTS = dict(
    backbone="conv4", image_size=28, embedding_size=128, loss="triplet", miner="semi-hard", margin=0.2,
    augment="light", flip=False, epochs=13, p=32, k=4, lr=2e-3, warmup_epochs=1.0, val=0.0, seed=0,
    plateau_patience=0, out="bench/results/omniglot-run",
)


def extract(zip_path: Path) -> Path:
    return extract_zip_once(zip_path, default_cache_dir() / "omniglot" / zip_path.stem) / zip_path.stem


def expand_rotations(root: Path, angles: int) -> Path:
    """Copy the character tree with each character also rotated by 90°, 180°, 270° as new classes.

    A rotated character is a different character, so this multiplies the training classes (a
    standard Omniglot practice); ``angles`` of 1 means no rotation, 4 means all four.
    """
    if angles == 1:
        return root
    target = root.parent / f"{root.name}-rot{angles}"
    if (target / ".complete").exists():
        return target
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    for png in sorted(root.rglob("*.png")):
        rel = png.relative_to(root)
        image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        for angle in (0, 90, 180, 270)[:angles]:
            out = target / f"{rel.parts[0]}_r{angle}" / Path(*rel.parts[1:])
            out.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out), image if angle == 0 else cv2.rotate(image, codes[angle]))
    (target / ".complete").touch()
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for option in config_args(TrainConfig):  # every training flag, as `finegrain train` has them
        parser.add_argument(*option.names, **option.options)
    parser.set_defaults(**BENCH_DEFAULTS, data=None)
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared Omniglot folder")
    parser.add_argument("--rotations", type=int, choices=(1, 2, 3, 4), default=4,
                        help="classes per character: itself plus 90/180/270-degree rotations")
    args = vars(parser.parse_args(argv))
    shared = args.pop("shared")
    rotations = args.pop("rotations")
    if not (shared / "images_background.zip").exists():
        print(f"no Omniglot data at {shared}", file=sys.stderr)
        return 2
    args["data"] = str(expand_rotations(extract(shared / "images_background.zip"), rotations))
    cfg = TrainConfig(**args).validate()
    out = Path(cfg.out)
    if out.exists():
        import shutil

        shutil.rmtree(out)

    start = time.perf_counter()
    result = train(cfg)
    train_seconds = time.perf_counter() - start
    train_images = sum(r["steps"] for r in result.history) * cfg.p * cfg.k

    embedder = load_encoder(out, need="embedding")
    runs = read_runs(shared / "all_runs.zip", embedder.image_size)
    t0 = time.perf_counter()
    oneshot = oneshot_accuracy(runs, embedder.encode_array)
    embed_seconds = time.perf_counter() - t0
    # Embedding throughput on a larger batch than the 800 run images, for a steadier figure.
    sample = np.stack([img for run in runs for img in run.train + run.test] * 5)
    t0 = time.perf_counter()
    embedder.encode_array(sample)
    embed_rate = len(sample) / (time.perf_counter() - t0)

    report = {
        "oneshot_20way_accuracy": oneshot["accuracy"],
        "train_seconds": round(train_seconds, 1),
        "train_images_per_second": round(train_images / train_seconds, 1),
        "embed_images_per_second": round(embed_rate, 1),
        "oneshot_eval_seconds": round(embed_seconds, 2),
        "final_epoch": result.final,
        "per_run": oneshot["per_run"],
        "config": cfg.to_dict(),
        "command": "python bench/omniglot.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
    }
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    Path("bench/results/omniglot.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k not in ("per_run", "config")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
