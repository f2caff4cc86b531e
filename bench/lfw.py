"""LFW face verification, "unrestricted, no outside data": one model per View 2 fold, trained from scratch.

    .venv/bin/python bench/lfw.py                 # View 2: 10 folds, the table in bench/README.md
    .venv/bin/python bench/lfw.py --view1         # model selection: train without pairsDevTest's people, test on it

For View 2 fold k, each MODEL is trained on every image of the people in the other nine folds' pairs
(people with one image cannot form a positive pair and are left out) and embeds fold k's 600 pairs.
Every pair's distance therefore comes from a model that never saw its people. The 10-fold protocol
then chooses fold k's threshold on the other nine folds' distances and scores fold k.

Variants: plain embeddings; + flip TTA; + PCA whitening fitted on the fold's training embeddings; both;
and, with two or more MODELs, their meta-embedding (``finegrain combine``), plain and with flip TTA.
The Eigenfaces baseline (PCA of 32x32 grey faces, Euclidean distance) uses the same folds and images.
Images: the central CROP px of the 112 px LFW images (the face and a little context), cached in --work.
Results go to bench/results/lfw-<view>.json; runs and crops live in --work, outside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from sklearn.decomposition import PCA

from finegrain.config import TrainConfig
from finegrain.encoders import MODEL_FILE, load_encoder
from finegrain.encoders.edit import combine_models
from finegrain.encoders.normalize import FeatureNormalizer
from finegrain.eval.verification import kfold_verification, pair_distances, roc_png
from finegrain.train.run import train
from finegrain.utils import atomic_write, atomic_write_text
from finegrain.verification.pairs import PairSet, read_pairs, resolve_images
from finegrain.verification.protocol import folds_for

LFW = Path(__file__).resolve().parents[2] / "shared/data/lfw"
RESULTS = Path("bench/results")
# Chosen on View 1 (bench/lfw.py --view1 and the runs listed in bench/README.md).
BASE = dict(loss="triplet", miner="semi-hard", augment="light", flip=True, val=0.0, p=32, k=4, lr=2e-3,
            workers=0, progress=False, seed=0)
MODELS: dict[str, dict] = {
    "lbp": dict(backbone="lbp", pooling="avg", image_size=80, epochs=40),
    "lbp96": dict(backbone="lbp", pooling="avg", image_size=96, epochs=40),
    "lbp-r2": dict(backbone="lbp", pooling="avg", image_size=80, epochs=40, lbp_radius=2),
    "cnn": dict(backbone="resnet", stem_stride=2, image_size=64, epochs=20),
    "lbp-arcface": dict(backbone="lbp", pooling="avg", image_size=80, epochs=20, loss="arcface"),
    "cnn-arcface": dict(backbone="resnet", stem_stride=2, image_size=64, epochs=20, loss="arcface"),
}


def make_crops(work: Path, crop: int) -> Path:
    """Central ``crop``×``crop`` of every image, written once (a marker file says the set is complete)."""
    out = work / f"crops{crop}"
    if (out / ".complete").exists():
        return out
    start = (112 - crop) // 2
    for person in sorted((LFW / "images").iterdir()):
        (out / person.name).mkdir(parents=True, exist_ok=True)
        for f in person.iterdir():
            img = cv2.imread(str(f))
            cv2.imwrite(str(out / person.name / f"{f.stem}.png"), img[start : start + crop, start : start + crop])
    (out / ".complete").touch()
    return out


def counts() -> dict[str, int]:
    rows = (line.split("\t") for line in (LFW / "lfw-names.txt").read_text().splitlines() if line.strip())
    return {name: int(n) for name, n in rows}


def write_train_list(people: set[str], path: Path) -> int:
    n = counts()
    lines = [f"{p}/{p}_{i:04d}.png {p}" for p in sorted(people) if n[p] >= 2 for i in range(1, n[p] + 1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def train_model(name: str, train_list: Path, crops: Path, run: Path, threads: int) -> float:
    """Train (or resume, or reuse) one model; returns the training seconds of this call."""
    if (run / MODEL_FILE).exists():
        return 0.0
    cfg = TrainConfig(data=str(train_list), root=str(crops), out=str(run), threads=threads, **{**BASE, **MODELS[name]})
    started = time.perf_counter()
    train(cfg, resume=(run / "config.yaml").exists(), quiet=True, tensorboard=False)
    return time.perf_counter() - started


def embed_all(encoder, paths: list[Path], progress: bool = False) -> np.ndarray:
    return encoder.encode_files(paths, progress=progress).vectors


def train_paths(train_list: Path, crops: Path) -> list[Path]:
    return [crops / line.split()[0] for line in train_list.read_text().splitlines() if line.strip()]


def model_variants(name: str, run: Path, train_list: Path, crops: Path, paths: list[Path], whiten_dim: int,
                   ) -> dict[str, np.ndarray]:
    """Pair-image embeddings of one model: plain, flip TTA, and PCA whitening fitted on its training images."""
    plain, flip = load_encoder(run), load_encoder(run, tta="flip")
    whiten = FeatureNormalizer.fit(embed_all(plain, train_paths(train_list, crops), progress=False), "whiten",
                                   whiten_dim)
    e, f = embed_all(plain, paths, progress=False), embed_all(flip, paths, progress=False)
    return {name: e, f"{name} +flip": f, f"{name} +whiten": whiten.transform(e),
            f"{name} +whiten +flip": whiten.transform(f)}


def eigenfaces(train_paths: list[Path], pair_paths: list[Path], dim: int = 128) -> np.ndarray:
    def grey(paths: list[Path]) -> np.ndarray:
        imgs = [cv2.resize(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (32, 32), interpolation=cv2.INTER_AREA)
                for p in paths]
        return np.stack(imgs).reshape(len(paths), -1).astype(np.float32) / 255.0

    return PCA(n_components=dim, random_state=0).fit(grey(train_paths)).transform(grey(pair_paths))


def evaluate_split(tag: str, people: set[str], pair_set: PairSet, selected: np.ndarray, crops: Path, work: Path,
                   models: list[str], threads: int, whiten_dim: int) -> tuple[dict[str, np.ndarray], float]:
    """Train on ``people``; distances of the ``selected`` pairs for every variant (and Eigenfaces).

    The distances are kept in ``distances.npz`` beside the runs, and reused while no model is newer.
    """
    train_list = work / tag / "train.txt"
    cache = work / tag / f"distances-{'-'.join(models)}.npz"
    done = [work / tag / name / MODEL_FILE for name in models]
    if cache.exists() and all(m.exists() and m.stat().st_mtime < cache.stat().st_mtime for m in done):
        return dict(np.load(cache)), 0.0
    write_train_list(people, train_list)
    subset = PairSet([p for p, s in zip(pair_set.pairs, selected) if s], pair_set.folds[selected])
    paths, index = resolve_images(subset, crops)
    seconds, runs, embeddings = 0.0, [], {}
    for name in models:
        run = work / tag / name
        seconds += train_model(name, train_list, crops, run, threads)
        runs.append(run)
        embeddings.update(model_variants(name, run, train_list, crops, paths, whiten_dim))
    if len(models) > 1:  # the product path: `finegrain combine`, then load it like any model
        meta = work / tag / "meta"
        combine_models(runs, meta)
        embeddings["meta"] = embed_all(load_encoder(meta), paths, progress=False)
        embeddings["meta +flip"] = embed_all(load_encoder(meta, tta="flip"), paths, progress=False)
    distances = {name: pair_distances(e, index) for name, e in embeddings.items()}
    distances["eigenfaces"] = pair_distances(eigenfaces(train_paths(train_list, crops), paths), index)
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object, so numpy does not append .npz to the temporary name
            np.savez(f, **distances)

    atomic_write(cache, save)
    return distances, seconds


def choose_on_view1(report: dict[str, dict]) -> str:
    """The variant View 2 reports as its result, by a rule fixed in code before View 2 is read.

    A model's extra (``+flip``, ``+whiten``, both) replaces the plain model only when its View 1 accuracy is
    higher by more than the plain model's View 1 standard error; then the best of these per-model choices
    wins. Eigenfaces is a reference, never a choice.
    """
    choices = []
    for plain in (n for n in report if "+" not in n and n != "eigenfaces"):
        floor = report[plain]["accuracy"] + report[plain]["standard_error"]
        extras = [n for n in report if n.startswith(plain + " +") and report[n]["accuracy"] > floor]
        choices.append(max(extras, key=lambda n: report[n]["accuracy"]) if extras else plain)
    return max(choices, key=lambda n: report[n]["accuracy"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--view1", action="store_true", help="model selection on View 1 instead of View 2")
    parser.add_argument("--models", default="lbp,lbp96,lbp-r2",
                        help=f"comma list of {', '.join(MODELS)} (default: lbp,lbp96,lbp-r2)")
    parser.add_argument("--folds", default="0-9", help="View 2 folds to run, e.g. 0-9 or 0-4 (default: 0-9)")
    parser.add_argument("--crop", type=int, default=80, help="central crop of the 112 px images (default: 80)")
    parser.add_argument("--whiten-dim", type=int, default=128, help="PCA whitening dimension (default: 128)")
    parser.add_argument("--work", default=os.path.expanduser("~/.cache/finegrain/lfw-bench"),
                        help="runs and crops (default: ~/.cache/finegrain/lfw-bench)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if not (LFW / "pairs.txt").exists():
        parser.error(f"LFW not found at {LFW} (see ../shared/data/README.md)")
    models = [m for m in args.models.split(",") if m]
    if unknown := [m for m in models if m not in MODELS]:
        parser.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    work = Path(args.work) / f"crop{args.crop}"
    started = time.perf_counter()
    crops = make_crops(Path(args.work), args.crop)
    everyone = set(counts())
    train_seconds = 0.0
    if args.view1:
        dev = read_pairs(LFW / "pairsDevTest.txt")
        distances, train_seconds = evaluate_split("view1", everyone - dev.names(), dev, np.ones(len(dev.pairs), bool),
                                                  crops, work, models, args.threads, args.whiten_dim)
        same, folds, fold_ids = dev.same, folds_for(dev.folds, dev.same), list(range(10))
    else:
        view2 = read_pairs(LFW / "pairs.txt")
        lo, _, hi = args.folds.partition("-")
        fold_ids = list(range(int(lo), int(hi or lo) + 1))
        if len(fold_ids) < 2 or not set(fold_ids) <= set(range(10)):
            parser.error("--folds: a range of at least two folds within 0-9 (each threshold comes from the others)")
        parts: dict[str, list[np.ndarray]] = {}
        for k in fold_ids:
            people = set().union(*(view2.fold_names(f) for f in range(10) if f != k)) - view2.fold_names(k)
            d, s = evaluate_split(f"fold{k}", people, view2, view2.folds == k, crops, work, models, args.threads,
                                  args.whiten_dim)
            train_seconds += s
            for name, v in d.items():
                parts.setdefault(name, []).append(v)
            print(f"fold {k} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        distances = {name: np.concatenate(v) for name, v in parts.items()}
        selected = np.isin(view2.folds, fold_ids)
        same, folds = view2.same[selected], view2.folds[selected]
    report = {name: kfold_verification(d, same, folds) for name, d in distances.items()}
    total = time.perf_counter() - started
    view = "view1" if args.view1 else "view2"
    best = max((n for n in report if n != "eigenfaces"), key=lambda n: report[n]["accuracy"])
    roc_png(distances[best], same, RESULTS / f"lfw-{view}-roc.png", title=f"LFW {view}: {best}")
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"lfw-{view}.json", json.dumps(
        {"command": command, "view": view, "folds": fold_ids, "crop": args.crop, "models": models,
         "total_seconds": round(total), "train_seconds": round(train_seconds), "results": report}, indent=2))
    if args.view1:
        chosen = choose_on_view1(report)
        atomic_write_text(RESULTS / "lfw-choice.json", json.dumps({"chosen": chosen, "rule": choose_on_view1.__doc__,
                                                                  "command": command}, indent=2))
        print(f"chosen on View 1 (bench/results/lfw-choice.json): {chosen}")
    elif (RESULTS / "lfw-choice.json").exists():
        chosen = json.loads((RESULTS / "lfw-choice.json").read_text())["chosen"]
        if chosen in report:
            r = report[chosen]
            print(f"result (the variant chosen on View 1): {chosen}: {100 * r['accuracy']:.2f} ± "
                  f"{100 * r['standard_error']:.2f}")
    fold_names = " | ".join(f"fold {k}" for k in fold_ids)
    print(f"| variant | mean accuracy ± SE | {fold_names} |")
    for name, r in report.items():
        folds_text = " | ".join(f"{100 * a:.1f}" for a in r["fold_accuracies"])
        print(f"| {name} | {100 * r['accuracy']:.2f} ± {100 * r['standard_error']:.2f} | {folds_text} |")
    print(f"\n{view}, {len(fold_ids)} fold(s), {total / 60:.1f} min in all ({train_seconds / 60:.1f} min training), "
          f"{os.cpu_count()} cores\ncommand: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
