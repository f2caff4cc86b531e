"""The ``finegrain`` command: each subcommand is a thin, typed function over the library.

Errors in the input print one line naming the flag or file, never a traceback (exit status 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from finegrain.config import TrainConfig, flag
from finegrain.detect.commands import add_detection_commands
from finegrain.errors import FinegrainError
from finegrain.eval.fewshot_commands import add_fewshot_commands
from finegrain.eval.identify_commands import add_identify_commands
from finegrain.eval.pseudolabel_commands import add_pseudolabel_commands
from finegrain.eval.verify_commands import add_verify_commands
from finegrain.explain.commands import add_explain_commands
from finegrain.infer.commands import add_inference_commands

_TYPES = {"str": str, "int": int, "float": float}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not the whole usage block
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_config_flags(parser: argparse.ArgumentParser, cls: type, positional: Sequence[str] = ()) -> None:
    """Expose every dataclass field as a flag (``image_size`` → ``--image-size``)."""
    for f in dataclasses.fields(cls):
        help_text = f.metadata.get("help", "")
        base = str(f.type).replace(" | None", "")
        if f.name in positional:
            parser.add_argument(f.name, type=_TYPES[base], help=help_text)
        elif base == "bool":
            parser.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
        else:
            default = None if f.default is dataclasses.MISSING else f.default
            parser.add_argument(flag(f.name), type=_TYPES[base], default=default,
                                help=f"{help_text} (default: {default})")


def cmd_train(cfg: TrainConfig, resume: bool = False) -> int:
    from finegrain.train.run import train

    result = train(cfg, resume=resume)
    print(json.dumps({"run": str(result.run_dir), **{k: v for k, v in result.final.items() if k != "event"}}, indent=2))
    return 0


def cmd_eval(run: str, data: str, root: str | None = None, out: str | None = None, skip_bad: bool = False,
             tta: str | None = None) -> int:
    from finegrain.eval.evaluate import evaluate_run

    print(json.dumps(evaluate_run(run, data, root=root, out=out, skip_bad=skip_bad, tta=tta), indent=2))
    return 0


def cmd_score(run: str, images: list[str], as_json: bool = False, batch_size: int = 256) -> int:
    from finegrain.data.sources import expand_images
    from finegrain.errors import DataError
    from finegrain.infer.scorer import Scorer

    scorer = Scorer.load(run, batch_size=batch_size)
    paths = expand_images(images)
    good, scores, problems = scorer.score_paths(paths)
    if as_json:
        print(json.dumps([{"path": str(p), "score": float(s)} for p, s in zip(good, scores)], indent=2))
    else:
        for p, s in zip(good, scores):
            print(f"{s:.4f}  {p}")
    if problems:
        # Report the unusable files after scoring the rest, so one bad file does not cost the others.
        error = DataError(f"{len(problems)} image(s) could not be scored", problems)
        print(f"finegrain score: error: {error}", file=sys.stderr)
        return 2
    return 0


def cmd_oneshot(run: str, runs: str) -> int:
    from finegrain.eval.oneshot import oneshot_accuracy, read_runs
    from finegrain.infer.embedder import Embedder

    embedder = Embedder.load(run)
    print(json.dumps(oneshot_accuracy(read_runs(runs, embedder.image_size), embedder.embed_array), indent=2))
    return 0


def cmd_index(run: str, gallery: str, out: str, root: str | None = None, batch_size: int = 256,
              tta: str | None = None) -> int:
    from finegrain.index.build import index_gallery

    summary = index_gallery(run, gallery, out, root=root, batch_size=batch_size, tta=tta)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_search(index: str, queries: list[str], k: int = 20, as_json: bool = False) -> int:
    from finegrain.index.build import search_index

    results = search_index(index, [Path(q) for q in queries], k=k)
    if as_json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"{r['query']}:")
        for rank, h in enumerate(r["hits"], 1):
            label = f"  [{h['label']}]" if h["label"] is not None else ""
            print(f"  {rank:3d}. {h['similarity']:.4f}  {h['path']}{label}")
    return 0


def cmd_demo(out: str = "demo-report", epochs: int | None = None) -> int:
    from finegrain.demo import run_demo

    return run_demo(Path(out), epochs=epochs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="finegrain", description="Fine-grained visual recognition from small data.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train an embedding model or an image scorer",
                       description="Train an embedding model (--task embed) or an image scorer (--task score).")
    add_config_flags(p, TrainConfig, positional=("data",))
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")

    p = sub.add_parser("eval", help="retrieval metrics on a labelled set, or correlation on a rated set")
    p.add_argument("run", help="run folder or model file")
    p.add_argument("data", help="labelled images (folder, CSV manifest or list), or rated ones for a scorer")
    p.add_argument("--root", help="folder that relative paths resolve against")
    p.add_argument("--out", help="where to write metrics.json and the grid PNG (default: RUN/eval)")
    p.add_argument("--skip-bad", action="store_true", help="drop unreadable images instead of stopping")
    p.add_argument("--tta", help="test-time augmentation: a comma list of flip, crops, scales (default: none)")

    p = sub.add_parser("score", help="score images with a model trained with --task score")
    p.add_argument("run", help="run folder or model file")
    p.add_argument("images", nargs="+", help="image files or folders of images")
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON")
    p.add_argument("--batch-size", type=int, default=256, help="images scored at a time (default: 256)")

    p = sub.add_parser("oneshot", help="N-way one-shot accuracy on Omniglot-format runs (all_runs.zip)")
    p.add_argument("run", help="run folder or model file")
    p.add_argument("runs", help="all_runs.zip or a folder of runNN/ folders")

    p = sub.add_parser("index", help="embed a gallery into a searchable index (adds to an existing one)")
    p.add_argument("run", help="run folder or model file")
    p.add_argument("gallery", help="gallery images: folder, CSV manifest or list")
    p.add_argument("--out", required=True, help="index folder")
    p.add_argument("--root", help="folder that relative paths resolve against")
    p.add_argument("--batch-size", type=int, default=256, help="images embedded at a time (default: 256)")
    p.add_argument("--tta", help="test-time augmentation: a comma list of flip, crops, scales (default: none); "
                   "searches of this index use the same")

    p = sub.add_parser("search", help="top-k most similar gallery images for each query")
    p.add_argument("index", help="index folder made by 'finegrain index'")
    p.add_argument("queries", nargs="+", help="query images")
    p.add_argument("-k", type=int, default=20, help="matches per query (default: 20)")
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON")

    add_detection_commands(sub)
    add_verify_commands(sub)
    add_fewshot_commands(sub)
    add_pseudolabel_commands(sub)
    add_explain_commands(sub)
    add_identify_commands(sub)
    add_inference_commands(sub)

    p = sub.add_parser("demo", help="train and evaluate on the bundled Omniglot subset (about 2 minutes)")
    p.add_argument("--out", default="demo-report", help="report folder (default: demo-report)")
    p.add_argument("--epochs", type=int, default=None, help="override the demo's epochs (for a quick look)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
    handler = args.pop("_handler", None)
    if args.get("action"):
        command = f"{command} {args.pop('action')}"
    try:
        if handler is not None:
            return handler(**args)
        if command == "train":
            resume = args.pop("resume")
            return cmd_train(TrainConfig(**args).validate(), resume=resume)
        return {"eval": cmd_eval, "score": cmd_score, "oneshot": cmd_oneshot, "index": cmd_index, "search": cmd_search,
                "demo": cmd_demo}[command](**args)
    except FinegrainError as e:
        print(f"finegrain {command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"finegrain {command}: interrupted; a training run continues with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
