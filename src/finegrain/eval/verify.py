"""The library side of ``finegrain verify``: a pair file under the 10-fold protocol, or one pair."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from finegrain.errors import DataError, FinegrainError
from finegrain.eval.pairs import read_pairs, resolve_images
from finegrain.eval.verification import best_threshold, kfold_verification, pair_distances, roc_png, roc_summary
from finegrain.infer.embedder import META_FORMAT, Embedder, resolve_model_path
from finegrain.models.model import FORMAT, update_extra
from finegrain.utils import atomic_write_text, progress_bar

THRESHOLD_KEY = "verification"


def embed_all(embedder: Embedder, paths: list[Path], progress: bool = True) -> np.ndarray:
    """Embeddings of ``paths`` in order; any unreadable image stops with every bad file named."""
    out, problems = [], []
    bar = progress_bar(total=len(paths), enabled=progress, desc="embedding", unit="img")
    for good, vectors, bad in embedder.embed_paths(paths):
        out.append(vectors)
        problems += bad
        bar.update(len(good) + len(bad))
    bar.close()
    if problems:
        raise DataError(f"{len(problems)} image(s) could not be read", problems)
    return np.concatenate(out) if out else np.zeros((0, embedder.embedding_size), np.float32)


def folds_for(pairs_folds: np.ndarray, same: np.ndarray, folds: int = 10, seed: int = 0) -> np.ndarray:
    """The file's own folds, or (a one-set file like View 1's) 10 stratified folds drawn with ``seed``."""
    if len(np.unique(pairs_folds)) > 1:
        return pairs_folds
    out = np.zeros(len(same), dtype=np.int64)
    for f, (_, test) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(same, same)):
        out[test] = f
    return out


def verify_pairs(run: Path | str, pairs: Path | str, root: Path | str, tta: str | None = None,
                 out: Path | str | None = None, save_threshold: bool = False, normalize: bool = True,
                 progress: bool = True) -> dict:
    """Accuracy ± SE over folds, ROC AUC, TAR at FAR 1e-2/1e-3, the thresholds; a ROC PNG in ``out``."""
    pair_set = read_pairs(pairs)
    paths, index = resolve_images(pair_set, root)
    embedder = Embedder.load(run, tta=tta, normalize=normalize)
    distances = pair_distances(embed_all(embedder, paths, progress), index)
    same = pair_set.same
    folds = folds_for(pair_set.folds, same)
    report = {"pairs": len(same), "folds": int(len(np.unique(folds))), "tta": list(embedder.tta),
              **kfold_verification(distances, same, folds), **roc_summary(distances, same)}
    overall, accuracy = best_threshold(distances, same)
    report["threshold_all_pairs"] = overall
    if out is not None:
        out = Path(out)
        roc_png(distances, same, out / "roc.png", title=f"{Path(pairs).name}: {report['accuracy']:.3f}")
        atomic_write_text(out / "verification.json", json.dumps(report, indent=2))
        report["roc_png"] = str(out / "roc.png")
    if save_threshold:
        update_extra(resolve_model_path(run), formats=(FORMAT, META_FORMAT), **{THRESHOLD_KEY: {
            "threshold": overall, "accuracy": accuracy, "source": str(pairs), "tta": list(embedder.tta)}})
        report["saved_threshold"] = overall
    return report


def verify_one(run: Path | str, image_a: Path | str, image_b: Path | str, threshold: float | None = None,
               tta: str | None = None) -> dict:
    """Distance between two images and the same/different call at the stored (or given) threshold."""
    embedder = Embedder.load(run, tta=tta)
    stored = embedder.extra.get(THRESHOLD_KEY) or {}
    if threshold is None:
        if "threshold" not in stored:
            raise FinegrainError(
                f"{run}: no verification threshold stored with the model; calibrate one with "
                "'finegrain verify RUN --pairs PAIRS --root DIR --save-threshold', or pass --threshold")
        threshold = float(stored["threshold"])
        if tta is None and stored.get("tta"):  # the threshold was calibrated on TTA embeddings
            embedder = Embedder.load(run, tta=stored["tta"])
    vectors = embed_all(embedder, [Path(image_a), Path(image_b)], progress=False)
    distance = float(np.linalg.norm(vectors[0] - vectors[1]))
    return {"image_a": str(image_a), "image_b": str(image_b), "distance": distance,
            "similarity": float(vectors[0] @ vectors[1]), "threshold": threshold,
            "same": bool(distance <= threshold)}
