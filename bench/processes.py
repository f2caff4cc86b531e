"""One process against two on the same data, epochs and seeds: validation metric, wall time and images/s.

Both sides run ``finegrain train --task score`` (the defaults: conv4 --width 0.5, 64 px, the direct recipe) on
the SCUT-FBP5500 60% training list for the same number of epochs (no early stopping, so both see the same
images), with ``--processes 1`` (torch's threads on every core) and ``--processes 2`` (one thread each), in
turn, for each seed. The validation split is the trainer's own (stratified by score bin), so no test image is
used. Each run appends its command and figures to ``bench/results/processes.jsonl``.

    .venv/bin/python bench/processes.py --epochs 8 --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCUT = Path(os.environ.get("FINEGRAIN_SCUT", ROOT.parent / "shared" / "data" / "scut-fbp5500"))
RESULTS = ROOT / "bench" / "results" / "processes.jsonl"


def make_training_folder(where: Path) -> Path:
    """The 60% training list as a whitespace list file (absolute image path, score), which finegrain reads."""
    rows = [line.split() for line in (SCUT / "splits" / "60-40_train.txt").read_text().splitlines() if line.strip()]
    listing = where / "scut-60-train.txt"
    listing.write_text("".join(f"{SCUT / 'images' / name} {score}\n" for name, score in rows))
    return listing


def train_once(data: Path, out: Path, processes: int, seed: int, epochs: int) -> dict:
    cmd = [sys.executable, "-m", "finegrain.cli", "train", str(data), "--task", "score", "--out", str(out),
           "--epochs", str(epochs), "--patience", "0", "--seed", str(seed), "--processes", str(processes),
           "--device", "cpu", "--no-progress"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    epochs_rows = [r for r in rows if "val_pearson" in r]
    best = max(epochs_rows, key=lambda r: r["val_pearson"])
    return {"command": shlex.join(cmd), "processes": processes, "seed": seed, "epochs": epochs,
            "wall_seconds": round(wall, 1), "best_val_pearson": round(best["val_pearson"], 4),
            "best_epoch": best["epoch"], "last_val_pearson": round(epochs_rows[-1]["val_pearson"], 4),
            "images_per_second": round(float(np.median([r["images_per_second"] for r in epochs_rows[1:]] or
                                                       [epochs_rows[0]["images_per_second"]])), 1),
            "world_size": epochs_rows[-1].get("world_size")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--processes", default="1,2")
    args = parser.parse_args()
    print("command:", shlex.join([sys.executable, *sys.argv]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_training_folder(Path(tmp))
        for seed in [int(s) for s in args.seeds.split(",")]:
            for processes in [int(p) for p in args.processes.split(",")]:
                row = train_once(data, Path(tmp) / f"run-p{processes}-s{seed}", processes, seed, args.epochs)
                print(json.dumps(row), flush=True)
                with RESULTS.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                results.append(row)
    print("\n| processes | seed | best validation Pearson (epoch) | last | wall s | images/s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['processes']} | {r['seed']} | {r['best_val_pearson']:.3f} ({r['best_epoch']}) | "
              f"{r['last_val_pearson']:.3f} | {r['wall_seconds']:.0f} | {r['images_per_second']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
