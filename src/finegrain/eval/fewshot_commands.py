"""CLI subcommand ``finegrain fewshot``: N-way K-shot accuracy on random episodes of a labelled set and/or
on Omniglot's official runs (a thin, typed function over ``finegrain.eval.episodes`` and ``oneshot``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from finegrain.errors import ConfigError, DataError, Problem
from finegrain.eval.episodes import MODES, Episode, episode_accuracy, sample_episodes
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


def _embed_all(embedder, paths: list[Path], progress: bool = True) -> np.ndarray:
    """One embedding per path, in order; every unreadable file is reported together in one DataError."""
    vectors: dict[Path, np.ndarray] = {}
    problems: list[Problem] = []
    bar = progress_bar(total=len(paths), enabled=progress, desc="embedding", unit="img")
    for good, emb, bad in embedder.embed_paths(paths):
        vectors.update(zip(good, emb))
        problems.extend(bad)
        bar.update(len(good) + len(bad))
    bar.close()
    if problems:
        raise DataError(f"{len(problems)} image(s) could not be read", problems)
    return np.stack([vectors[p] for p in paths])


def fewshot_report(run: str, data: str | None = None, root: str | None = None, runs: str | None = None,
                   ways: str = "20,5", shots: str = "1", queries: int = 1, episodes: int = 1000, seed: int = 0,
                   mode: str = "nearest", progress: bool = True) -> dict:
    """The numbers behind ``finegrain fewshot``, as a JSON-ready dict (see ``cmd_fewshot``)."""
    from finegrain.infer.embedder import Embedder

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
    embedder = Embedder.load(run)
    if data is not None:
        embeddings = _embed_all(embedder, paths, progress)
        report["episodes"] = [
            {"ways": w, "shots": s, "queries": queries, "mode": mode, **episode_accuracy(embeddings, eps, mode)}
            for w, s, eps in progress_bar(planned, enabled=progress, desc="scoring", unit="setting")
        ]
    if runs is not None:
        from finegrain.eval.oneshot import oneshot_accuracy, read_runs

        official = oneshot_accuracy(read_runs(runs, embedder.image_size), embedder.embed_array)
        per_run = np.array(list(official["per_run"].values()))
        # The same interval as for episodes, over the runs (20 in all_runs.zip, so it is wide).
        official["ci95"] = float(1.96 * per_run.std() / np.sqrt(len(per_run)))
        report["official_runs"] = {"path": str(runs), "shots": 1, **official}
    return report


def _print_table(report: dict) -> None:
    print(f"model: {report['run']}")
    if "data" in report:
        d = report["data"]
        print(f"data:  {d['path']} ({d['images']} images, {d['classes']} classes)")
        print(f"{'ways':>6} {'shots':>6} {'queries':>8} {'episodes':>9} {'mode':>10} {'accuracy':>9} {'±95%':>7}")
        for r in report["episodes"]:
            print(f"{r['ways']:>6} {r['shots']:>6} {r['queries']:>8} {r['episodes']:>9} {r['mode']:>10} "
                  f"{r['accuracy']:>9.2%} {r['ci95']:>7.2%}")
    if "official_runs" in report:
        o = report["official_runs"]
        print(f"official runs: {o['path']}: {o['ways']}-way 1-shot over {o['runs']} runs: "
              f"{o['accuracy']:.2%} ± {o['ci95']:.2%}")


def cmd_fewshot(run: str, data: str | None = None, root: str | None = None, runs: str | None = None,
                ways: str = "20,5", shots: str = "1", queries: int = 1, episodes: int = 1000, seed: int = 0,
                mode: str = "nearest", as_json: bool = False) -> int:
    """Few-shot accuracy of an embedding model: every (ways, shots) setting on DATA's episodes, and/or the
    official one-shot runs. ``ways`` and ``shots`` are comma-separated lists; prints a table or JSON."""
    report = fewshot_report(run, data, root=root, runs=runs, ways=ways, shots=shots, queries=queries,
                            episodes=episodes, seed=seed, mode=mode)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0


def add_fewshot_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fewshot", help="N-way K-shot accuracy on random episodes of a labelled set or official runs",
                       description="Embed every image of a labelled set once, then measure N-way K-shot accuracy "
                                   "over random episodes for every --ways × --shots setting; with --runs, also (or "
                                   "only) the official Omniglot one-shot runs.")
    p.add_argument("run", help="run folder or model file")
    p.add_argument("data", nargs="?", help="labelled images: folder, CSV manifest or list (optional with --runs)")
    p.add_argument("--root", help="folder that relative paths in DATA resolve against")
    p.add_argument("--runs", help="Omniglot-format one-shot runs: all_runs.zip or a folder of runNN/ folders")
    p.add_argument("--ways", default="20,5", help="classes per episode, comma-separated (default: 20,5)")
    p.add_argument("--shots", default="1", help="support images per class, comma-separated (default: 1)")
    p.add_argument("--queries", type=int, default=1, help="query images per class in each episode (default: 1)")
    p.add_argument("--episodes", type=int, default=1000, help="episodes per setting (default: 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the episode sampler (default: 0)")
    p.add_argument("--mode", choices=MODES, default="nearest",
                   help="nearest support image, or nearest class prototype (mean of the shots) (default: nearest)")
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON")
    p.set_defaults(_handler=cmd_fewshot)
