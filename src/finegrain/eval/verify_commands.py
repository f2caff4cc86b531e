"""``finegrain verify``: the 10-fold protocol on a pair file, or a same/different answer for one pair."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from finegrain.errors import FinegrainError


def cmd_verify(run: str, images: list[str], pairs: str | None = None, root: str | None = None,
               as_json: bool = False, out: str | None = None, save_threshold: bool = False,
               threshold: float | None = None, tta: str | None = None, no_normalize: bool = False) -> int:
    from finegrain.eval.verify import verify_one, verify_pairs
    from finegrain.infer.tta import parse_tta

    parse_tta(tta)  # a bad --tta is reported before any model is loaded
    if pairs:
        if images:
            raise FinegrainError("give either --pairs (with --root) or two images, not both")
        if not root:
            raise FinegrainError("--pairs needs --root, the folder of <name>/<name>_000i images")
        run_dir = Path(run) if Path(run).is_dir() else Path(run).parent
        report = verify_pairs(run, pairs, root, tta=tta, out=out or run_dir / "verification",
                              save_threshold=save_threshold, normalize=not no_normalize)
        if as_json:
            print(json.dumps(report, indent=2))
            return 0
        print(f"accuracy {100 * report['accuracy']:.2f}% ± {100 * report['standard_error']:.2f} "
              f"over {report['folds']} folds ({report['pairs']} pairs)")
        print(f"ROC AUC {report['roc_auc']:.4f}  TAR@FAR=1e-2 {report['tar_at_far_0.01']:.3f}  "
              f"TAR@FAR=1e-3 {report['tar_at_far_0.001']:.3f}")
        print("fold accuracies " + " ".join(f"{a:.3f}" for a in report["fold_accuracies"]))
        print("thresholds      " + " ".join(f"{t:.3f}" for t in report["thresholds"]))
        print(f"ROC curve: {report['roc_png']}")
        if save_threshold:
            print(f"threshold {report['saved_threshold']:.4f} (best on all pairs) saved with the model")
        return 0
    if len(images) != 2:
        raise FinegrainError("give two images to compare, or --pairs PAIRS --root DIR for a pair file")
    result = verify_one(run, images[0], images[1], threshold=threshold, tta=tta)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        answer = "same" if result["same"] else "different"
        print(f"{answer}  distance {result['distance']:.4f} (threshold {result['threshold']:.4f})")
    return 0


def add_verify_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="same or different? a pair file (10-fold protocol) or two images",
                       description="With --pairs: LFW-format pairs under the 10-fold protocol (each fold's "
                       "threshold chosen on the other nine). With two images: distance and a same/different "
                       "answer at the threshold stored with the model.")
    p.add_argument("run", help="run folder or model file")
    p.add_argument("images", nargs="*", help="two images to compare")
    p.add_argument("--pairs", help="pair file: header 'N' or 'FOLDS N', then 'name i j' / 'name1 i name2 j' lines")
    p.add_argument("--root", help="folder of <name>/<name>_000i.<ext> images for --pairs")
    p.add_argument("--out", help="folder for roc.png and verification.json (default: RUN/verification)")
    p.add_argument("--save-threshold", action="store_true",
                   help="store the best threshold on all the pairs with the model, for two-image use")
    p.add_argument("--threshold", type=float, help="two images: override the stored threshold")
    p.add_argument("--tta", help="test-time augmentation: a comma list of flip, crops, scales")
    p.add_argument("--no-normalize", action="store_true", help="ignore the feature normaliser stored with the model")
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON")
    p.set_defaults(_handler=cmd_verify)
