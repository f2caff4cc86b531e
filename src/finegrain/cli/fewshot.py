"""``finegrain fewshot`` and ``finegrain oneshot``: N-way K-shot accuracy of an embedding model."""

from __future__ import annotations

import json

from finegrain.cli.registry import arg, command, tta_arg
from finegrain.fewshot.episodes import MODES


@command("fewshot", "N-way K-shot accuracy on random episodes of a labelled set or official runs",
         arg("run", help="run folder or model file"),
         arg("data", nargs="?", help="labelled images: folder, CSV manifest or list (optional with --runs)"),
         arg("--root", help="folder that relative paths in DATA resolve against"),
         arg("--runs", help="Omniglot-format one-shot runs: all_runs.zip or a folder of runNN/ folders"),
         arg("--ways", default="20,5", help="classes per episode, comma-separated (default: 20,5)"),
         arg("--shots", default="1", help="support images per class, comma-separated (default: 1)"),
         arg("--queries", type=int, default=1, help="query images per class in each episode (default: 1)"),
         arg("--episodes", type=int, default=1000, help="episodes per setting (default: 1000)"),
         arg("--seed", type=int, default=0, help="seed of the episode sampler (default: 0)"),
         arg("--mode", choices=MODES, default="nearest",
             help="nearest support image, or nearest class prototype (mean of the shots) (default: nearest)"),
         tta_arg(),
         arg("--json", dest="as_json", action="store_true", help="print JSON"),
         description="Embed every image of a labelled set once, then measure N-way K-shot accuracy over random "
                     "episodes for every --ways × --shots setting; with --runs, also (or only) the official "
                     "Omniglot one-shot runs.")
def fewshot_command(run: str, data: str | None = None, root: str | None = None, runs: str | None = None,
                    ways: str = "20,5", shots: str = "1", queries: int = 1, episodes: int = 1000, seed: int = 0,
                    mode: str = "nearest", tta: str | None = None, as_json: bool = False) -> int:
    from finegrain.fewshot.report import fewshot_report

    report = fewshot_report(run, data, root=root, runs=runs, ways=ways, shots=shots, queries=queries,
                            episodes=episodes, seed=seed, mode=mode, tta=tta)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0


@command("oneshot", "N-way one-shot accuracy on Omniglot-format runs (all_runs.zip)",
         arg("run", help="run folder or model file"),
         arg("runs", help="all_runs.zip or a folder of runNN/ folders"),
         tta_arg())
def oneshot_command(run: str, runs: str, tta: str | None = None) -> int:
    from finegrain.encoders import load_encoder
    from finegrain.fewshot.oneshot import oneshot_accuracy, read_runs

    encoder = load_encoder(run, need="embedding", tta=tta)
    print(json.dumps(oneshot_accuracy(read_runs(runs, encoder.image_size), encoder.encode_array), indent=2))
    return 0


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
