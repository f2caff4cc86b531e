"""Why a scorer keeps the latest epoch within one standard error of its best validation Pearson: epoch by
epoch, the default scorer's validation Pearson beside its test Pearson on a SCUT transfer set.

    .venv/bin/python bench/transfer_curve.py --dataset scut-c2a --seed 0

Trains ``finegrain train DATA --task score --patience 0`` (the defaults without early stopping) and after each
epoch scores the test faces with the model as it stands, for this analysis only: training never sees them.
Prints one JSON row per epoch (validation Pearson and its standard error, test Pearson) and appends each to
``bench/results/transfer_curve.jsonl`` as it comes (the test faces are decoded once). On Caucasian -> Asian the
validation Pearson reaches its plateau within ten epochs while the test Pearson on the other group keeps rising
for twenty more (bench/README).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from datasets import DATASETS

from finegrain.config import TrainConfig
from finegrain.encoders import load_encoder
from finegrain.models import save_model
from finegrain.train.single import train_run

RESULTS = Path("bench/results")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="scut-c2a", choices=[n for n in DATASETS if n.startswith("scut")])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: the defaults' (60 for scut-c2a)")
    args = parser.parse_args()
    if not (Path(__file__).resolve().parents[2] / "shared" / "data").exists():
        print("bench/transfer_curve.py needs ../shared/data", file=sys.stderr)
        return 2
    ds = DATASETS[args.dataset]()
    work = Path(tempfile.mkdtemp())
    RESULTS.mkdir(parents=True, exist_ok=True)

    def test_each_epoch(trainer, row: dict) -> None:
        # The model as it stands after this epoch, saved and loaded as any user's model (no TTA).
        manifest = {**trainer.task.model_manifest(), "tta": []}
        save_model(trainer.task.model, work / "epoch.safetensors", **manifest)
        encoder = load_encoder(work / "epoch.safetensors", tta="none")
        line = json.dumps({"dataset": ds.name, "seed": args.seed, "epoch": row["epoch"],
                           "val_pearson": round(row["val_pearson"], 4),
                           "val_pearson_se": round(row["val_pearson_se"], 4),
                           "test_pearson": round(ds.evaluate(encoder.encode_array, encoder.image_size), 4)})
        print(line, flush=True)
        with (RESULTS / "transfer_curve.jsonl").open("a") as f:  # row by row: a stopped run keeps its epochs
            f.write(line + "\n")

    cfg = TrainConfig(data=str(ds.train), task="score", out=str(work / "run"), seed=args.seed, epochs=args.epochs,
                      patience=0, progress=False).validate()
    train_run(cfg, quiet=True, tensorboard=False, epoch_hooks=[test_each_epoch])
    return 0


if __name__ == "__main__":
    sys.exit(main())
