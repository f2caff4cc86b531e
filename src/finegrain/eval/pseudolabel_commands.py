"""CLI subcommand ``finegrain pseudolabel``: a thin, typed function over ``finegrain.eval.pseudolabel``."""

from __future__ import annotations

import argparse
import json
import sys


def cmd_pseudolabel(run: str, unlabelled: str, threshold: float, out: str, gallery: str | None = None,
                    root: str | None = None, margin: float = 0.0) -> int:
    from finegrain.eval.pseudolabel import pseudolabel

    summary = pseudolabel(run, unlabelled, threshold, out, gallery=gallery, root=root, margin=margin)
    print(json.dumps(summary, indent=2))
    if summary["skipped_bad"]:
        print(f"finegrain pseudolabel: note: {len(summary['skipped_bad'])} unreadable image(s) were skipped "
              "(listed under skipped_bad)", file=sys.stderr)
    return 0


def add_pseudolabel_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pseudolabel", help="label unlabelled images with their nearest gallery identity, when confident",
        description="Give each unlabelled image the label of its most similar gallery identity when the cosine "
                    "similarity reaches --threshold (and beats the next identity by --margin); write the accepted "
                    "ones as a CSV manifest (path,label,confidence) that 'finegrain train' reads.")
    p.add_argument("run", help="index folder made by 'finegrain index', or a run folder / model file (needs --gallery)")
    p.add_argument("unlabelled", help="folder of images (searched recursively) or a list file of image paths")
    p.add_argument("--threshold", type=float, required=True, help="lowest cosine similarity accepted, in [-1, 1]")
    p.add_argument("--out", required=True, help="CSV manifest to write (accepted images only)")
    p.add_argument("--gallery", help="labelled images (folder, CSV manifest or list) when RUN is a model")
    p.add_argument("--root", help="folder that relative paths in the gallery and list files resolve against")
    p.add_argument("--margin", type=float, default=0.0,
                   help="the best identity must beat the best different one by this much (default: 0, no check)")
    p.set_defaults(_handler=cmd_pseudolabel)
