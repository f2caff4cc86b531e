"""Few-shot report: N-way K-shot accuracy on random episodes of a labelled set and/or on Omniglot's official
one-shot runs, with one embedding of each image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from finegrain.encoders import load_encoder
from finegrain.errors import ConfigError, DataError, Problem
from finegrain.fewshot.episodes import MODES, Episode, episode_accuracy, sample_episodes
from finegrain.utils import progress_bar


def _int_list(text: str, flag: str) -> list[int]:
    """``"20,5"`` → ``[20, 5]``; duplicates dropped, order kept (it is the order of the report)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{flag}: expected whole numbers separated by commas, got {text!r}") from None
    if not values:
        raise ConfigError(f"--{flag}: expected at least one number, got {text!r}")
    return list(dict.fromkeys(values))


def _labelled_paths(data: str, root: str | None) -> tuple[list[Path], np.ndarray, list[str]]:
    """Unique image paths, their integer class ids and the class names, from a labelled source.

    A path listed twice is kept once: as two "images" it could be drawn as both the support and the
    query of one class, which would make that query trivially right.
    """
    from finegrain.data.sources import read_source

    # kind="label": a list whose labels are integer class ids must not be read as scores.
    records = read_source(data, root, kind="label")
    unlabelled = [Problem(r.path, "no class label") for r in records if r.label is None]
    if unlabelled:
        raise DataError(f"{data}: few-shot evaluation needs a class label for every image", unlabelled)
    label_of: dict[Path, str] = {}
    conflicts = []
    for r in records:
        seen = label_of.setdefault(r.path, r.label)
        if seen != r.label:
            conflicts.append(Problem(r.path, f"listed with two labels, {seen!r} and {r.label!r}"))
    if conflicts:
        raise DataError(f"{data}: {len(conflicts)} image(s) have conflicting labels", conflicts)
    classes = sorted(set(label_of.values()))
    index = {c: i for i, c in enumerate(classes)}
    paths = list(label_of)
    return paths, np.array([index[label_of[p]] for p in paths], dtype=np.int64), classes


def fewshot_report(run: str, data: str | None = None, root: str | None = None, runs: str | None = None,
                   ways: str = "20,5", shots: str = "1", queries: int = 1, episodes: int = 1000, seed: int = 0,
                   mode: str = "nearest", tta: str | None = None, progress: bool = True) -> dict:
    """Accuracy for every (ways, shots) setting on DATA's episodes, and/or the official one-shot runs, as a
    JSON-ready dict. ``ways`` and ``shots`` are comma-separated lists."""

    if data is None and runs is None:
        raise ConfigError("give a labelled data set (DATA), official one-shot runs (--runs), or both")
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    combos = [(w, s) for w in _int_list(ways, "ways") for s in _int_list(shots, "shots")]
    report: dict = {"run": str(run)}
    # Sample before loading or embedding anything: an impossible request fails at once, not after minutes.
    planned: list[tuple[int, int, list[Episode]]] = []
    if data is not None:
        paths, labels, classes = _labelled_paths(data, root)
        planned = [(w, s, sample_episodes(labels, w, s, queries, episodes, seed)) for w, s in combos]
        report["data"] = {"path": str(data), "images": len(paths), "classes": len(classes)}
    encoder = load_encoder(run, need="embedding", tta=tta)
    report["tta"] = list(encoder.tta)
    if data is not None:
        embeddings = encoder.encode_files(paths, progress=progress).vectors
        report["episodes"] = [
            {"ways": w, "shots": s, "queries": queries, "mode": mode, **episode_accuracy(embeddings, eps, mode)}
            for w, s, eps in progress_bar(planned, enabled=progress, desc="scoring", unit="setting")
        ]
    if runs is not None:
        from finegrain.fewshot.oneshot import oneshot_accuracy, read_runs

        official = oneshot_accuracy(read_runs(runs, encoder.image_size), encoder.encode_array)
        per_run = np.array(list(official["per_run"].values()))
        # The same interval as for episodes, over the runs (20 in all_runs.zip, so it is wide).
        official["ci95"] = float(1.96 * per_run.std() / np.sqrt(len(per_run)))
        report["official_runs"] = {"path": str(runs), "shots": 1, **official}
    return report
