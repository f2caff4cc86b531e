"""Recipe comparison on the bundled Omniglot subset: which loss / size / width / data works best.

    .venv/bin/python bench/recipes.py [NAME ...]      (all recipes when none is named)

Each recipe trains from the demo configuration with a few settings changed, on the 420 bundled
background characters, and reports 20-way one-shot accuracy on Lake's 20 official runs. Every run
uses one thread and no loader workers, so two can run side by side on two cores without
disturbing each other's timing much. Results are appended to bench/results/recipes.jsonl.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from omniglot import expand_rotations  # noqa: E402

from finegrain.config import TrainConfig  # noqa: E402
from finegrain.demo import DEMO_CONFIG, extract_bundle  # noqa: E402
from finegrain.encoders import load_encoder  # noqa: E402
from finegrain.fewshot.oneshot import oneshot_accuracy, read_runs  # noqa: E402
from finegrain.train.run import train  # noqa: E402

BASE = {"threads": 1, "workers": 0, "epochs": 12}
RECIPES: dict[str, dict] = {
    "triplet-semihard": {},
    "triplet-batchhard": {"miner": "batch-hard"},
    "arcface-s16": {"loss": "arcface", "scale": 16.0, "margin": 20.0, "lr": 3e-3},
    "arcface-s30": {"loss": "arcface", "scale": 30.0, "margin": 28.6, "lr": 3e-3},
    "size-40": {"image_size": 40},
    "width-2x": {"width": 2.0},
    "heavy-augment": {"augment": "heavy"},
    "margin-0.1-dim-128": {"margin": 0.1, "embedding_size": 128},
    "rotations-x4-3-epochs": {"rotations": 4, "epochs": 3},
    "rotations-x4-6-epochs": {"rotations": 4, "epochs": 6},
}


def run(name: str) -> dict:
    bundle = extract_bundle()
    settings = {**DEMO_CONFIG, **BASE, **RECIPES[name]}
    data = expand_rotations(bundle / "background", settings.pop("rotations", 1))
    out = Path("bench/results/recipes") / name
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    train(TrainConfig(data=str(data), out=str(out), progress=False, **settings), quiet=True, tensorboard=False)
    seconds = time.perf_counter() - start
    embedder = load_encoder(out, need="embedding")
    result = oneshot_accuracy(read_runs(bundle / "runs", embedder.image_size), embedder.encode_array)
    return {"recipe": name, "oneshot_20way": round(result["accuracy"], 4), "train_seconds": round(seconds, 1),
            "changes": RECIPES[name]}


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(RECIPES))
    if unknown:
        print(f"unknown recipes: {', '.join(unknown)}; known: {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    Path("bench/results").mkdir(parents=True, exist_ok=True)
    for name in names or list(RECIPES):
        row = run(name)
        with open("bench/results/recipes.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
