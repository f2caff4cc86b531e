"""Why scores default to ``--input-norm image``: in SCUT-FBP5500 a photo's overall brightness tracks its rating
with opposite signs in the two groups, a cue a network trained on one group learns and the other contradicts.

    .venv/bin/python bench/scut_brightness.py

Prints, per group, the Pearson correlation between each image's mean pixel value (64 px, as finegrain trains)
and its mean rating, and the mean brightness of the image border (the background) and of its centre.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from datasets import SHARED, _images

from finegrain.eval.regression import regression_metrics


def main() -> int:
    labels = SHARED / "scut-fbp5500" / "labels.txt"
    if not labels.exists():
        print(f"bench/scut_brightness.py needs {labels}", file=sys.stderr)
        return 2
    rows = [line.split() for line in labels.read_text().splitlines() if line.strip()]
    for group, prefix in (("Asian", "A"), ("Caucasian", "C")):
        chosen = [(f, float(s)) for f, s in rows if f.startswith(prefix)]
        images = _images([SHARED / "scut-fbp5500" / "images" / f for f, _ in chosen], 64).astype(np.float32)
        scores = np.array([s for _, s in chosen])
        brightness = images.mean(axis=(1, 2, 3))
        print(json.dumps({
            "group": group, "images": len(chosen),
            "pearson_brightness_rating": round(regression_metrics(brightness, scores)["pearson"], 3),
            "border_mean": round(float(images[:, :8].mean()), 1),
            "centre_mean": round(float(images[:, 16:48, 16:48].mean()), 1),
        }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
