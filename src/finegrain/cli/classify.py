"""``finegrain predict``: class probabilities from a model trained with --task classify."""

from __future__ import annotations

import json
import sys

from finegrain.cli.registry import arg, command, device_arg
from finegrain.errors import DataError, FinegrainError


@command("predict", "class probabilities of images under a classifier (trained with --task classify)",
         arg("run", help="run folder or model file of a classifier"),
         arg("images", nargs="+", help="image files or folders of images"),
         arg("--top", type=int, default=5, help="classes shown per image (default: 5)"),
         arg("--json", dest="as_json", action="store_true", help="print JSON"),
         arg("--batch-size", type=int, default=256, help="images classified at a time (default: 256)"),
         device_arg(),
         description="Predict the classes of images; unreadable files are named after the others are predicted.")
def predict_command(run: str, images: list[str], top: int = 5, as_json: bool = False, batch_size: int = 256,
                    device: str = "auto") -> int:
    from finegrain.classify import Classifier
    from finegrain.data.sources import expand_images

    if top < 1 or batch_size < 1:
        raise FinegrainError(f"--top and --batch-size must be at least 1, not {top} and {batch_size}")
    classifier = Classifier.load(run, device)
    predicted = classifier.predict_files(expand_images(images), batch=batch_size)
    ranked = classifier.top(predicted.probabilities, top)
    if as_json:
        print(json.dumps([{"path": str(p), "top": r} for p, r in zip(predicted.paths, ranked)], indent=2))
    else:
        for path, r in zip(predicted.paths, ranked):
            shown = ", ".join(f"{c['class']} {c['probability']:.3f}" for c in r)
            print(f"{path}: {shown}")
    if predicted.problems:
        # After the readable images are predicted, so one bad file does not cost the others.
        error = DataError(f"{len(predicted.problems)} image(s) could not be classified", predicted.problems)
        print(f"finegrain predict: error: {error}", file=sys.stderr)
        return 2
    return 0
