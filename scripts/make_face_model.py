"""Train the face model bundled with finegrain (``src/finegrain/assets/face_model.safetensors``).

An embedding of face identity, trained with finegrain's default settings on every LFW person with at least two
images (``../shared/data/lfw/images``: 112-pixel centre crops, the face about 65 pixels wide). SCUT-FBP5500 is
not used, so the SCUT benchmarks (bench/transfer.py) measure what starting from it is worth on faces it never
saw. It starts models with ``--init face`` and stands in for a model where a command is given ``face``
(``finegrain verify face a.jpg b.jpg``, ``finegrain serve --model face``).

    .venv/bin/python scripts/make_face_model.py [--work DIR] [--threads N] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from finegrain.config import TrainConfig
from finegrain.encoders import MODEL_FILE
from finegrain.encoders.loader import bundled_model_path
from finegrain.train.run import train

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lfw" / "images"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=str(Path.home() / ".cache" / "finegrain" / "face-model"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="default: finegrain's data-sized default")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    started = time.perf_counter()
    cfg = TrainConfig(data=str(LFW), out=str(work), threads=args.threads, epochs=args.epochs, progress=False)
    result = train(cfg, quiet=False, tensorboard=False)
    target = bundled_model_path("face")
    shutil.copyfile(work / MODEL_FILE, target)
    summary = {**result.summary(), "seconds": round(time.perf_counter() - started), "written": str(target),
               "bytes": target.stat().st_size}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
