"""``finegrain verify`` (same or different?) and ``finegrain identification`` (gallery/probe CMC)."""

from __future__ import annotations

import json
from pathlib import Path

from finegrain.cli.registry import arg, command, device_arg, tta_arg
from finegrain.errors import FinegrainError


@command("verify", "same or different? a pair file (10-fold protocol) or two images",
         arg("run", help="run folder or model file"),
         arg("images", nargs="*", help="two images to compare"),
         arg("--pairs", help="pair file: header 'N' or 'FOLDS N', then 'name i j' / 'name1 i name2 j' lines"),
         arg("--root", help="folder of <name>/<name>_000i.<ext> images for --pairs"),
         arg("--out", help="folder for roc.png and verification.json (default: RUN/verification)"),
         arg("--save-threshold", action="store_true",
             help="store the best threshold on all the pairs with the model, for two-image use"),
         arg("--threshold", type=float, help="two images: override the stored threshold"),
         tta_arg(),
         arg("--no-normalize", action="store_true", help="ignore the feature normaliser stored with the model"),
         arg("--json", dest="as_json", action="store_true", help="print JSON"),
         device_arg(),
         description="With --pairs: LFW-format pairs under the 10-fold protocol (each fold's threshold chosen on "
                     "the other nine). With two images: distance and a same/different answer at the threshold "
                     "stored with the model (embedded with the TTA that threshold was fitted with).")
def verify_command(run: str, images: list[str], pairs: str | None = None, root: str | None = None,
                   as_json: bool = False, out: str | None = None, save_threshold: bool = False,
                   threshold: float | None = None, tta: str | None = None, no_normalize: bool = False,
                   device: str = "auto") -> int:
    from finegrain.encoders import parse_tta
    from finegrain.verification.protocol import verify_one, verify_pairs

    parse_tta(tta)  # a bad --tta is reported before any model is loaded
    if pairs:
        if images:
            raise FinegrainError("give either --pairs (with --root) or two images, not both")
        if not root:
            raise FinegrainError("--pairs needs --root, the folder of <name>/<name>_000i images")
        run_dir = Path(run) if Path(run).is_dir() else Path(run).parent
        report = verify_pairs(run, pairs, root, tta=tta, out=out or run_dir / "verification",
                              save_threshold=save_threshold, normalize=not no_normalize, device=device)
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
    if no_normalize:
        raise FinegrainError("--no-normalize is for --pairs evaluation; a stored threshold applies to the "
                             "normalised embeddings")
    result = verify_one(run, images[0], images[1], threshold=threshold, tta=tta, device=device)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        answer = "same" if result["same"] else "different"
        print(f"{answer}  distance {result['distance']:.4f} (threshold {result['threshold']:.4f})")
    return 0


@command("identification", "gallery/probe identification: rank-1/5/10 and a CMC curve",
         arg("run", help="run folder or model file"),
         arg("--gallery", required=True, help="labelled gallery images: folder, CSV manifest or list"),
         arg("--probes", required=True, help="labelled probe images: folder, CSV manifest or list"),
         arg("--root", help="folder that relative paths resolve against"),
         arg("--out", help="where to write metrics.json and cmc.png (default: RUN/identification)"),
         arg("--skip-bad", action="store_true", help="leave unreadable images out instead of stopping"),
         arg("--batch-size", type=int, default=256, help="images embedded at a time (default: 256)"),
         tta_arg(), device_arg())
def identification_command(run: str, gallery: str, probes: str, root: str | None = None, out: str | None = None,
                           skip_bad: bool = False, batch_size: int = 256, tta: str | None = None,
                           device: str = "auto") -> int:
    from finegrain.identification.evaluate import identification_run

    metrics = identification_run(run, gallery, probes, root=root, out=out, skip_bad=skip_bad, batch_size=batch_size,
                                 tta=tta, device=device)
    print(json.dumps({k: v for k, v in metrics.items() if k != "cmc"}, indent=2))
    return 0
