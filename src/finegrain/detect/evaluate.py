"""``finegrain detector eval``: recall at 10/50/100 false positives, average precision, VGA frames per second and
a ROC curve, on images with annotated faces."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from finegrain.data.images import ImageError, decode_image
from finegrain.detect.annotations import read_annotations
from finegrain.detect.cascade import Cascade
from finegrain.detect.windows import to_grey
from finegrain.errors import DataError, Problem
from finegrain.eval.detection import Matched, average_precision, match_detections, recall_at_false_positives, roc_png
from finegrain.utils import atomic_write_text, progress_bar

VGA = (640, 480)


def read_annotated_images(annotations: str | Path, images: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Grey images and their boxes; every unusable or missing image is named in one error."""
    truth = read_annotations(annotations)
    greys, problems = {}, []
    for name in progress_bar(truth, desc="reading images", unit="img"):
        try:
            greys[name] = to_grey(decode_image(Path(images) / name))
        except ImageError as error:
            problems.append(error.problem)
        except DataError as error:  # a missing file
            problems.append(Problem(Path(images) / name, str(error)))
    if problems:
        raise DataError(f"{len(problems)} annotated image(s) cannot be read", problems)
    if not greys:
        raise DataError(f"{annotations}: no annotated images")
    return greys, truth


def frames_per_second(detect: Callable[[np.ndarray], object], greys: Sequence[np.ndarray], repeats: int = 1) -> float:
    """Frames per second of ``detect`` over the images resized to 640×480 (after one warm-up frame)."""
    frames = [cv2.resize(g, VGA, interpolation=cv2.INTER_AREA) for g in greys]
    detect(frames[0])
    start = time.perf_counter()
    for _ in range(repeats):
        for frame in frames:
            detect(frame)
    return repeats * len(frames) / (time.perf_counter() - start)


def summarise(matched: Matched) -> dict:
    recall = recall_at_false_positives(matched, (10, 50, 100))
    return {f"recall_at_{k}_fp": round(v, 4) for k, v in recall.items()} | {
        "average_precision": round(average_precision(matched), 4),
        "faces": matched.num_truth, "detections": len(matched.scores)}


def evaluate_detector(cascade: Cascade, annotations: str | Path, images: str | Path, out: str | Path | None = None,
                      label: str = "finegrain cascade") -> dict:
    greys, truth = read_annotated_images(annotations, images)
    names = list(greys)
    start = time.perf_counter()
    found = progress_bar(cascade.detect_many(greys[n] for n in names), total=len(names), desc="detecting")
    detections = {name: (d.boxes, d.scores) for name, d in zip(names, found)}
    seconds = time.perf_counter() - start
    matched = match_detections(detections, truth)
    result = summarise(matched) | {
        "images": len(names), "seconds": round(seconds, 2),
        "vga_fps": round(frames_per_second(cascade.detect, [greys[n] for n in names]), 2),
        "min_face": cascade.settings.min_face,
    }
    if out is not None:
        out = Path(out)
        result["roc_png"] = str(roc_png({label: matched}, out / "roc.png", title="CMU+MIT-style detection ROC"))
        atomic_write_text(out / "metrics.json", json.dumps(result, indent=2) + "\n")
    return result
