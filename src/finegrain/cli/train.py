"""``finegrain train`` and ``finegrain demo``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from finegrain.cli.registry import arg, command, config_args
from finegrain.config import TrainConfig


@command("train", "train an embedding model or an image scorer",
         *config_args(TrainConfig, positional=("data",)),
         arg("--resume", action="store_true", help="continue the run in --out from its last checkpoint"),
         arg("--override", action="store_true",
             help="with --resume: continue with the flags given here where they differ from the run's"),
         description="Train an embedding model (--task embed) or an image scorer (--task score).")
def train_command(resume: bool = False, override: bool = False, **settings) -> int:
    from finegrain.train.run import train

    cfg = TrainConfig(**settings)
    result = train(cfg.validate(), resume=resume, given=settings, override=override)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary: rank 0's
        print(json.dumps(result.summary(), indent=2))
    return 0


@command("demo", "train and evaluate on the bundled Omniglot subset (about 2 minutes)",
         arg("--out", default="demo-report", help="report folder (default: demo-report)"),
         arg("--epochs", type=int, default=None, help="override the demo's epochs (for a quick look)"))
def demo_command(out: str = "demo-report", epochs: int | None = None) -> int:
    from finegrain.demo import run_demo

    return run_demo(Path(out), epochs=epochs)
