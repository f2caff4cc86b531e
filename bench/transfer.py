"""Starting from the bundled face model: SCUT-FBP5500 60/40 Pearson from scratch against ``--init face``.

    .venv/bin/python bench/transfer.py [--epochs N] [--threads 2] [--runs scratch,init-face,init-face-lr1]

Both runs are ``finegrain train 60-40_train.txt --root images --task score`` with the default settings (their
own validation split, early stopping), one of them with ``--init face``; each is then scored on the official
test file. The face model (scripts/make_face_model.py) learned identities on LFW only: no SCUT image, test or
training, went into it. Rows are appended to bench/results/transfer.jsonl.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

from finegrain.config import TrainConfig
from finegrain.data import prepare, read_list
from finegrain.encoders import load_encoder
from finegrain.eval.regression import regression_metrics
from finegrain.train.run import train

SCUT = Path(__file__).resolve().parents[2] / "shared/data/scut-fbp5500"
RESULTS = Path("bench/results")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the data-sized default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", default="scratch,init-face", help="comma list of scratch, init-face, init-face-lr1 "
                        "(--init face with --backbone-lr-scale 1: the backbone learns as fast as the head)")
    args = parser.parse_args()
    print("$ " + shlex.join([".venv/bin/python", *sys.argv]), flush=True)
    test = None
    variants = {"scratch": {}, "init-face": {"init": "face"},
                "init-face-lr1": {"init": "face", "backbone_lr_scale": 1.0}}
    for name in args.runs.split(","):
        flags = variants[name]
        out = RESULTS / "transfer-runs" / name
        shutil.rmtree(out, ignore_errors=True)
        cfg = TrainConfig(data=str(SCUT / "splits/60-40_train.txt"), root=str(SCUT / "images"), out=str(out),
                          task="score", epochs=args.epochs, threads=args.threads, progress=False, **flags)
        started = time.perf_counter()
        result = train(cfg, quiet=True, tensorboard=False)
        seconds = time.perf_counter() - started
        scorer = load_encoder(out, need="score")
        if test is None:
            test = prepare(read_list(SCUT / "splits/60-40_test.txt", root=SCUT / "images"), scorer.image_size,
                           task="score", progress=False)
        metrics = regression_metrics(scorer.encode_array(test.images.array()), test.scores)
        shown = "".join(f" --{k.replace('_', '-')} {v}" for k, v in flags.items())
        row = {"run": name, "command": "finegrain train 60-40_train.txt --root images --task score" + shown
               + (f" --epochs {args.epochs}" if args.epochs else ""),
               "best_val_pearson": round(max(r.get("val_pearson", float("nan")) for r in result.history), 4),
               "test_pearson": round(metrics["pearson"], 4), "test_mae": round(metrics["mae"], 4),
               "epochs": len(result.history), "seconds": round(seconds)}
        print(json.dumps(row), flush=True)
        with (RESULTS / "transfer.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
