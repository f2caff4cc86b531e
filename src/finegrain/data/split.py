"""Deterministic train/val/test splits: by class (open-set retrieval) or by image (stratified).

Splits are computed as positions, so callers holding arrays aligned with the records (decoded
images, labels) can slice them; `split_records` maps the positions back to records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from finegrain.data.records import Record
from finegrain.errors import ConfigError, DataError, Problem

SPLITS = ("train", "val", "test")
BY = ("class", "image")


def _fixed_split(records: Sequence[Record]) -> dict[str, list[int]]:
    """Honour the `split` field the source carried; every record must have a valid one."""
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    problems = []
    for i, r in enumerate(records):
        value = (r.split or "").strip().lower()
        if value in out:
            out[value].append(i)
        else:
            problems.append(Problem(r.path, f"split {r.split!r} is not one of {', '.join(SPLITS)}"))
    if problems:
        raise DataError(f"{len(problems)} inputs have a bad 'split' value", problems)
    if not out["train"]:
        raise DataError("the 'split' column puts no image in 'train'")
    return out


def _check_fractions(val: float, test: float) -> None:
    for flag, value in (("--val", val), ("--test", test)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{flag} must be a fraction in [0, 1), got {value}")
    if val + test >= 1.0:
        raise ConfigError(f"--val + --test must leave images for training, got {val} + {test}")


def val_class_count(classes: int, val: float) -> int:
    """Classes held out for validation: the fraction ``val`` of them, but at least 2 (retrieval needs a wrong
    class to rank) and at least a fifth of them up to 5 (so 5 from 25 classes on: two or three classes would
    saturate any retrieval metric)."""
    if val <= 0:
        return 0
    return max(round(val * classes), 2, min(5, classes // 5))


def _split_classes(records: Sequence[Record], val: float, test: float, seed: int) -> dict[str, list[int]]:
    classes = sorted({r.label for r in records})
    order = np.random.default_rng(seed).permutation(len(classes))
    n = len(classes)
    # Validation comes first (it is needed during training), test gets at least one class, training keeps one.
    n_val = min(val_class_count(n, val), n - 1)
    n_test = min(max(round(test * n), 1 if test > 0 else 0), n - 1 - n_val)
    assign = {}
    for rank, c in enumerate(order):
        assign[classes[c]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for i, r in enumerate(records):
        out[assign[r.label]].append(i)
    return out


def _take(idx: np.ndarray, labels: np.ndarray | None, fraction: float, seed: int):
    """Split idx into (rest, taken), stratified by label when sklearn can, else plainly random."""
    if fraction <= 0 or len(idx) < 2:
        return idx, idx[:0]
    stratify = labels[idx] if labels is not None else None
    try:
        return train_test_split(idx, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError:  # too few images per class (or in total) to stratify
        return train_test_split(idx, test_size=fraction, random_state=seed)


def _split_images(records: Sequence[Record], val: float, test: float, seed: int,
                  strata: Sequence | None = None) -> dict[str, list[int]]:
    labels = None
    idx = np.arange(len(records))
    single = idx[:0]
    if strata is not None or all(r.label is not None for r in records):
        labels = np.asarray(strata if strata is not None else [r.label for r in records], dtype=object)
        counts = Counter(labels.tolist())
        # A single-image class cannot appear in two splits; it stays in train.
        alone = np.asarray([counts[lab] < 2 for lab in labels])
        idx, single = idx[~alone], idx[alone]
    rest, test_idx = _take(idx, labels, test, seed)
    train_idx, val_idx = _take(rest, labels, val / (1.0 - test), seed + 1)
    parts = {"train": np.concatenate([train_idx, single]), "val": val_idx, "test": test_idx}
    return {name: np.sort(p).tolist() for name, p in parts.items()}


def split_positions(
    records: Sequence[Record], by: str = "class", val: float = 0.2, test: float = 0.0, seed: int = 0,
    strata: Sequence | None = None,
) -> dict[str, list[int]]:
    """{"train", "val", "test"}: sorted positions into `records` (possibly empty), fixed by the seed.

    by="class" puts whole classes in one split, so val/test classes are unseen in training
    (open-set retrieval). by="image" splits each class's images (or each of ``strata``, such as score
    bins), stratified where possible.
    Records that carry a `split` (from a manifest column) are split that way instead.
    """
    records = list(records)
    if any(r.split is not None for r in records):
        return _fixed_split(records)
    if by not in BY:
        raise ConfigError(f"--split-by must be one of {', '.join(BY)}, got {by!r}")
    _check_fractions(val, test)
    if by == "class":
        if any(r.label is None for r in records):
            raise ConfigError("--split-by class needs labelled images; use --split-by image for scores")
        if len({r.label for r in records}) < 2:
            raise DataError("a split by class needs at least 2 classes")
        return _split_classes(records, val, test, seed)
    return _split_images(records, val, test, seed, strata)


def split_records(
    records: Sequence[Record], by: str = "class", val: float = 0.2, test: float = 0.0, seed: int = 0,
    strata: Sequence | None = None,
) -> dict[str, list[Record]]:
    """Like `split_positions`, as lists of records in input order."""
    records = list(records)
    parts = split_positions(records, by=by, val=val, test=test, seed=seed, strata=strata)
    return {name: [records[i] for i in positions] for name, positions in parts.items()}
