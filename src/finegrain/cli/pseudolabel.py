"""``finegrain pseudolabel``: confident nearest-identity labels for unlabelled images."""

from __future__ import annotations

import json
import sys

from finegrain.cli.registry import arg, command, tta_arg


@command("pseudolabel", "label unlabelled images with their nearest gallery identity, when confident",
         arg("run", help="index folder made by 'finegrain index', or a run folder / model file (needs --gallery)"),
         arg("unlabelled", help="folder of images (searched recursively) or a list file of image paths"),
         arg("--threshold", type=float, required=True, help="lowest cosine similarity accepted, in [-1, 1]"),
         arg("--out", required=True, help="CSV manifest to write (accepted images only)"),
         arg("--gallery", help="labelled images (folder, CSV manifest or list) when RUN is a model"),
         arg("--root", help="folder that relative paths in the gallery and list files resolve against"),
         arg("--margin", type=float, default=0.0,
             help="the best identity must beat the best different one by this much (default: 0, no check)"),
         tta_arg(" (with an index, its own TTA is used)"),
         description="Give each unlabelled image the label of its most similar gallery identity when the cosine "
                     "similarity reaches --threshold (and beats the next identity by --margin); write the accepted "
                     "ones as a CSV manifest (path,label,confidence) that 'finegrain train' reads.")
def pseudolabel_command(run: str, unlabelled: str, threshold: float, out: str, gallery: str | None = None,
                        root: str | None = None, margin: float = 0.0, tta: str | None = None) -> int:
    from finegrain.pseudolabel.run import pseudolabel

    summary = pseudolabel(run, unlabelled, threshold, out, gallery=gallery, root=root, margin=margin, tta=tta)
    print(json.dumps(summary, indent=2))
    if summary["skipped_bad"]:
        print(f"finegrain pseudolabel: note: {len(summary['skipped_bad'])} unreadable image(s) were skipped "
              "(listed under skipped_bad)", file=sys.stderr)
    return 0
