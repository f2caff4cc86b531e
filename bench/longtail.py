"""Long-tailed classification on LFW: the people with at least 10 images (158 people, 10 to 530 images each).

    .venv/bin/python bench/longtail.py [METHOD ...] [--epochs 20] [--threads 2] [--width W | --widths A,B,C,D]
        [--reuse] [--no-plain]

Five images of every person are held out as a balanced test set (fixed by a seed, before anything trains);
the rest (5 to 525 per person) train ``finegrain train --task classify --imbalance METHOD``, which holds out
its own validation split from the training images. Reported on the test set: mean per-class accuracy (the
long-tail metric), top-1, and the mean accuracy of the tail (people with fewer than 20 training images), with
the training wall time, beside a plain PyTorch loop (bench/plain_loop.py, softmax CNN) given the wall time of
the ``auto`` run.

crt, tau-norm and none act on the representation that ``auto`` trains (plain cross-entropy, the same seed: the
same weights), so they are read from the auto run by applying each method to it, exactly as
``--imbalance crt|tau-norm|none`` would after that same training; the others train on their own.
Rows are appended to bench/results/longtail.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plain_loop  # noqa: E402

from finegrain.artifact import read_artifact  # noqa: E402
from finegrain.classify import Classifier  # noqa: E402
from finegrain.config import TrainConfig  # noqa: E402
from finegrain.data import prepare, read_list  # noqa: E402
from finegrain.eval.classification import classification_metrics, per_class_accuracy  # noqa: E402
from finegrain.models import model_from_config  # noqa: E402
from finegrain.train.classify_recipe import rebalance_classifier  # noqa: E402
from finegrain.train.classify_task import ClassifyTask  # noqa: E402
from finegrain.train.run import train  # noqa: E402
from finegrain.train.single import prepare_splits  # noqa: E402
from finegrain.train.trainer import CHECKPOINT  # noqa: E402

LFW = Path(__file__).resolve().parents[2] / "shared/data/lfw/images"
RESULTS = Path("bench/results")
TEST_PER_PERSON, MIN_IMAGES, TAIL = 5, 10, 20
TRAINED = ("auto", "class-balanced", "ldam-drw", "balanced-softmax", "knn")


def write_split(seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    train_lines, test_lines = [], []
    for person in sorted(p for p in LFW.iterdir() if p.is_dir()):
        files = sorted(person.glob("*.jpg"))
        if len(files) < MIN_IMAGES:
            continue
        order = rng.permutation(len(files))
        for rank, i in enumerate(order):
            line = f"{person.name}/{files[i].name} {person.name}"
            (test_lines if rank < TEST_PER_PERSON else train_lines).append(line)
    out = RESULTS / "data"
    out.mkdir(parents=True, exist_ok=True)
    (out / "lfw-longtail-train.txt").write_text("\n".join(train_lines) + "\n")
    (out / "lfw-longtail-test.txt").write_text("\n".join(test_lines) + "\n")
    return out / "lfw-longtail-train.txt", out / "lfw-longtail-test.txt"


def test_metrics(probabilities: np.ndarray, labels: np.ndarray, train_counts: np.ndarray) -> dict:
    m = classification_metrics(probabilities, labels)
    per_class = per_class_accuracy(probabilities.argmax(1), labels, probabilities.shape[1])
    m["tail_accuracy"] = float(np.nanmean(per_class[train_counts < TAIL]))
    return {k: round(v, 4) for k, v in m.items()}


def test_set(test_list: Path, classes: list[str], size: int):
    data = prepare(read_list(test_list, root=LFW), size, task="embed", min_per_class=1, progress=False)
    index = {c: i for i, c in enumerate(classes)}
    return data.images.array(), np.asarray([index[data.classes[k]] for k in data.labels])


def run(method: str, train_list: Path, epochs: int, threads: int, reuse: bool, width: float | None,
        tag: str, widths: str | None = None) -> tuple[Path, float]:
    out = RESULTS / "longtail-runs" / f"{method}{tag}"
    timing = out / "bench_seconds.json"
    if reuse and (out / "model.safetensors").exists() and timing.exists():
        return out, json.loads(timing.read_text())["seconds"]
    shutil.rmtree(out, ignore_errors=True)
    flags = {"head": "knn"} if method == "knn" else {"imbalance": method}
    cfg = TrainConfig(data=str(train_list), root=str(LFW), out=str(out), task="classify", epochs=epochs,
                      threads=threads, width=width, widths=widths, progress=False, **flags)
    started = time.perf_counter()
    train(cfg, quiet=True, tensorboard=False)
    seconds = time.perf_counter() - started
    timing.write_text(json.dumps({"seconds": seconds}))
    return out, seconds


def decoupled_from(run_dir: Path, method: str) -> Classifier:
    """What ``--imbalance method`` gives after the auto run's (identical) training: the method applied to the
    best epoch's plain classifier, read from the run's checkpoint (the model file holds auto's choice)."""
    cfg = dataclasses.replace(TrainConfig.load(run_dir / "config.yaml"), imbalance=method, progress=False)
    train_data, val_data = prepare_splits(cfg, quiet=True)
    checkpoint = read_artifact(run_dir / CHECKPOINT, kinds=("checkpoint",))
    model = model_from_config(checkpoint.manifest["best"]["architecture"])
    model.load_state_dict(checkpoint.sub("best"))
    task = ClassifyTask(cfg, model.eval(), train_data, val_data, cfg.epochs)
    if method != "none":
        task.model, _ = rebalance_classifier(task, cfg)
    trained = Classifier.load(run_dir)
    trained.encoder.model = task.model
    return trained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("methods", nargs="*", default=list(TRAINED))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="evaluate finished runs again instead of retraining")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain loop")
    parser.add_argument("--width", type=float, default=None, help="backbone width (default: the classify default)")
    parser.add_argument("--widths", default=None, help="channels of each convolution (instead of --width)")
    args = parser.parse_args()
    print("$ " + shlex.join([".venv/bin/python", *sys.argv]), flush=True)
    train_list, test_list = write_split()
    rows = []
    for method in args.methods:
        tag = f"-w{args.width:g}" if args.width else f"-w{args.widths.replace(',', '-')}" if args.widths else ""
        tag += f"-e{args.epochs}" if args.epochs != 20 else ""
        run_dir, seconds = run(method, train_list, args.epochs, args.threads, args.reuse, args.width, tag,
                               args.widths)
        classifier = Classifier.load(run_dir)
        images, labels = test_set(test_list, classifier.classes, classifier.image_size)
        counts = np.asarray(classifier.info["train_counts"])
        applied = classifier.info["applied"]
        found = {method if method != "auto" else f"auto (chose {applied['method']})": classifier}
        if method == "auto":
            for derived in ("none", "crt", "tau-norm"):
                found[derived] = decoupled_from(run_dir, derived)
            if applied["method"] != "none":
                print(f"note: auto chose {applied['method']}; validation {applied['validation']}", flush=True)
        if method == "auto" and not args.no_plain:
            # The plain loop gets the auto run's wall time.
            train_data = prepare(read_list(train_list, root=LFW), 64, task="embed", min_per_class=1, progress=False)
            index = {c: i for i, c in enumerate(classifier.classes)}
            y = np.asarray([index[train_data.classes[k]] for k in train_data.labels])
            plain = plain_loop.train(train_data.images.array(), y, "embed", seconds)
            with torch.no_grad():
                probs = torch.cat([torch.softmax(plain(x), 1) for x in plain_loop.to_tensor(images).split(256)])
            probs = probs.numpy()
            row = {"method": f"plain loop (same time as auto{tag})", "seconds": round(seconds),
                   **test_metrics(probs, labels, counts)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        for name, model in found.items():
            row = {"method": name + tag, "seconds": round(seconds), "epochs": args.epochs,
                   **test_metrics(model.probabilities(images), labels, counts)}
            if name.startswith("auto"):
                row["validation"] = applied.get("validation")
            rows.append(row)
            print(json.dumps(row), flush=True)
    with (RESULTS / "longtail.jsonl").open("a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
