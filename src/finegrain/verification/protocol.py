"""Verification ("same or different?"): a pair file under the 10-fold protocol, or one pair at a stored threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from finegrain.encoders import Encoder, load_encoder, parse_tta
from finegrain.encoders.edit import store_threshold
from finegrain.errors import ConfigError, FinegrainError
from finegrain.eval.verification import best_threshold, kfold_verification, pair_distances, roc_png, roc_summary
from finegrain.utils import atomic_write_text
from finegrain.verification.pairs import read_pairs, resolve_images

THRESHOLD_KEY = "verification"


def folds_for(pairs_folds: np.ndarray, same: np.ndarray, folds: int = 10, seed: int = 0) -> np.ndarray:
    """The file's own folds, or (a one-set file like View 1's) 10 stratified folds drawn with ``seed``."""
    if len(np.unique(pairs_folds)) > 1:
        return pairs_folds
    out = np.zeros(len(same), dtype=np.int64)
    for f, (_, test) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(same, same)):
        out[test] = f
    return out


def _normalizer_of(encoder: Encoder) -> str | None:
    normalizer = getattr(encoder, "normalizer", None)
    return normalizer.describe() if normalizer is not None else None


def verify_pairs(run: Path | str, pairs: Path | str, root: Path | str, tta: str | None = None,
                 out: Path | str | None = None, save_threshold: bool = False, normalize: bool = True,
                 progress: bool = True, device: str = "cpu") -> dict:
    """Accuracy ± SE over folds, ROC AUC, TAR at FAR 1e-2/1e-3, the thresholds; a ROC PNG in ``out``."""
    pair_set = read_pairs(pairs)
    paths, index = resolve_images(pair_set, root)
    encoder = load_encoder(run, need="embedding", tta=tta, normalize=normalize, device=device)
    if save_threshold and not normalize:
        raise ConfigError("--save-threshold with --no-normalize would store a threshold for embeddings the model "
                          "never makes; drop one of them")
    distances = pair_distances(encoder.encode_files(paths, progress=progress).vectors, index)
    same = pair_set.same
    folds = folds_for(pair_set.folds, same)
    report = {"pairs": len(same), "folds": int(len(np.unique(folds))), "tta": list(encoder.tta),
              **kfold_verification(distances, same, folds), **roc_summary(distances, same)}
    overall, accuracy = best_threshold(distances, same)
    report["threshold_all_pairs"] = overall
    if out is not None:
        out = Path(out)
        roc_png(distances, same, out / "roc.png", title=f"{Path(pairs).name}: {report['accuracy']:.3f}")
        atomic_write_text(out / "verification.json", json.dumps(report, indent=2))
        report["roc_png"] = str(out / "roc.png")
    if save_threshold:
        store_threshold(run, THRESHOLD_KEY, {"threshold": overall, "accuracy": accuracy, "fitted_on": str(pairs),
                                             "pairs": len(same), "tta": list(encoder.tta),
                                             "normalizer": _normalizer_of(encoder)})
        report["saved_threshold"] = overall
    return report


def verify_one(run: Path | str, image_a: Path | str, image_b: Path | str, threshold: float | None = None,
               tta: str | None = None, device: str = "cpu") -> dict:
    """Distance between two images and the same/different call at the stored (or given) threshold.

    A stored threshold was fitted on embeddings made one way (TTA); they are made that way again, and an
    explicit different ``tta`` is an error rather than a call at a threshold that does not apply.
    """
    encoder = load_encoder(run, need="embedding", tta=tta, device=device)
    if threshold is None:
        stored = encoder.thresholds.get(THRESHOLD_KEY)
        if not stored:
            raise FinegrainError(
                f"{run}: no verification threshold stored with the model; calibrate one with "
                "'finegrain verify RUN --pairs PAIRS --root DIR --save-threshold', or pass --threshold")
        fitted_tta = parse_tta(stored.get("tta"))
        if tta is not None and parse_tta(tta) != fitted_tta:
            raise ConfigError(f"the stored threshold was fitted with --tta {','.join(fitted_tta) or 'none'}; pass the "
                              "same --tta, or give --threshold")
        if fitted_tta != encoder.tta:
            encoder = load_encoder(run, need="embedding", tta=fitted_tta, device=device)
        threshold = float(stored["threshold"])
    vectors = encoder.encode_files([Path(image_a), Path(image_b)], progress=False).vectors
    distance = float(np.linalg.norm(vectors[0] - vectors[1]))
    return {"image_a": str(image_a), "image_b": str(image_b), "distance": distance,
            "similarity": float(vectors[0] @ vectors[1]), "threshold": threshold, "tta": list(encoder.tta),
            "same": bool(distance <= threshold)}
