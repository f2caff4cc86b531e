"""SCUT-FBP5500 scoring benchmark: the staged recipe's ablation on the official 60/40 split, and 5-fold CV.

    .venv/bin/python bench/scut.py [CONFIG ...] [--split 60-40 | --cv] [--threads N]

CONFIGs (all by default): direct, direct-unbalanced, staged-plain, staged-widen2, staged-net2net. Each trains with
``finegrain.train`` on the split's training file, then scores its test file and prints Pearson, Spearman,
MAE, RMSE and the training wall time. ``--cv`` runs one CONFIG on the five official folds and prints the
mean. Rows are appended to bench/results/scut.jsonl; runs live in bench/results/scut-runs/.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from finegrain.config import TrainConfig
from finegrain.data import prepare, read_list
from finegrain.encoders import load_encoder
from finegrain.eval.regression import regression_metrics
from finegrain.train.run import train

SCUT = Path(__file__).resolve().parents[2] / "shared/data/scut-fbp5500"
RESULTS = Path("bench/results")
# Shared by every configuration: 96-px faces, the original method's ELU net without batch norm.
BASE = dict(task="score", backbone="tiny_darknet", activation="elu", batch_norm=False, image_size=96, augment="light",
            flip=True, epochs=24,
            batch_size=32, lr=2e-3, val=0.0, seed=0, workers=0, progress=False)
CONFIGS: dict[str, dict] = {
    # Huber regression from scratch, class-balanced (the ablation baseline) and plain shuffled.
    "direct": dict(recipe="direct"),
    "direct-unbalanced": dict(recipe="direct", balance=False),
    # Siamese pre-training, then fine-tuning at the same width: no Net2Net anywhere.
    "staged-plain": dict(recipe="staged", pretrain_epochs=8, grow="", widen=1.0),
    # The recipe as described: full-width pre-training, Net2Net widen x2 with noise, fine-tune at double width.
    "staged-widen2": dict(recipe="staged", pretrain_epochs=8, grow="", widen=2.0),
    # Start at half width, grow on plateau in pre-training, widen x2 before fine-tuning.
    "staged-net2net": dict(recipe="staged", width=0.5, pretrain_epochs=8, grow="widen:1.5", widen=2.0,
                           plateau_patience=2),
}


def run_one(name: str, split: str, threads: int) -> dict:
    train_file, test_file = SCUT / f"splits/{split}_train.txt", SCUT / f"splits/{split}_test.txt"
    out = RESULTS / "scut-runs" / f"{name}-{split}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = TrainConfig(data=str(train_file), root=str(SCUT / "images"), out=str(out), threads=threads,
                      **{**BASE, **CONFIGS[name]})
    started = time.perf_counter()
    train(cfg, quiet=True, tensorboard=False)
    seconds = time.perf_counter() - started
    scorer = load_encoder(out, need="score")
    test = prepare(read_list(test_file, root=SCUT / "images"), scorer.image_size, task="score", progress=False)
    metrics = regression_metrics(scorer.encode_array(test.images.array()), test.scores)
    grown = json.loads(json.dumps(scorer.model.backbone.config()))
    row = {"config": name, "split": split, **{k: round(v, 4) for k, v in metrics.items()},
           "train_seconds": round(seconds, 1), "threads": threads, "final_widths_sum": sum(grown["widths"]),
           "final_depths": grown["depths"], "test_images": len(test.records)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "scut.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", metavar="CONFIG", help=f"any of {', '.join(CONFIGS)} (default: all)")
    parser.add_argument("--split", default="60-40", help="official split name (60-40, cv1 ... cv5)")
    parser.add_argument("--cv", action="store_true", help="run the five official folds and print the mean")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not SCUT.is_dir():
        sys.exit(f"bench/scut.py: {SCUT} not found (the shared SCUT-FBP5500 data)")
    print("command:", shlex.join([".venv/bin/python", "bench/scut.py", *sys.argv[1:]]), flush=True)
    unknown = sorted(set(args.configs) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown config(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    splits = [f"cv{i}" for i in range(1, 6)] if args.cv else [args.split]
    for name in args.configs or list(CONFIGS):
        rows = [run_one(name, split, args.threads) for split in splits]
        if args.cv:
            mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in ("pearson", "mae", "rmse")}
            print(json.dumps({"config": name, "cv_mean": mean,
                              "train_seconds_mean": round(float(np.mean([r["train_seconds"] for r in rows])), 1)}))


if __name__ == "__main__":
    main()
