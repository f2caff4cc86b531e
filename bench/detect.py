"""Face detection on the CMU+MIT test scenes (130 grey images, 511 faces): finegrain's cascade beside OpenCV's
Haar cascades, same images, same matching rule (IoU ≥ 0.5, detections scanned by score over the whole set),
one run.

    .venv/bin/python bench/detect.py [--detector DET] [--min-face N] [--threads N]

Prints recall at 10/50/100 false positives, average precision and frames per second on the images resized to
640×480, for each detector; writes bench/results/detect/{results.json,roc.png}. The Haar cascades score each
box by its neighbour count (``detectMultiScale2`` with scaleFactor 1.1), which ranks their detections for the
ROC; both minNeighbors 1 (the fuller curve) and 3 (OpenCV's default) are reported.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from finegrain.detect.evaluate import frames_per_second, read_annotated_images, summarise
from finegrain.detect.store import bundled_detector_path, load_cascade
from finegrain.eval.detection import match_detections, roc_png
from finegrain.utils import atomic_write_text

SCENES = Path(__file__).resolve().parents[2] / "shared/data/cmu-mit-faces/test_scenes"
OUT = Path("bench/results/detect")


def haar(name: str, min_neighbours: int):
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + f"haarcascade_frontalface_{name}.xml")

    def detect(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rects, neighbours = cascade.detectMultiScale2(grey, 1.1, min_neighbours)
        boxes = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        return boxes, np.asarray(neighbours, dtype=np.float64).ravel()

    return detect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default=None, help="detector file (default: the bundled one)")
    parser.add_argument("--min-face", type=float, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    greys, truth = read_annotated_images(SCENES / "ground_truth_bboxes.txt", SCENES / "test_jpg")
    names = list(greys)
    cascade = load_cascade(args.detector, min_face=args.min_face)

    def ours(grey):
        found = cascade.detect(grey)
        return found.boxes, found.scores

    detectors = {"finegrain cascade": ours}
    for name in ("default", "alt"):
        for n in (1, 3):
            detectors[f"Haar {name}, minNeighbors {n}"] = haar(name, n)
    rows, curves = {}, {}
    for label, detect in detectors.items():
        start = time.perf_counter()
        matched = match_detections({n: detect(greys[n]) for n in names}, truth)
        seconds = time.perf_counter() - start
        rows[label] = summarise(matched) | {"seconds": round(seconds, 2),
                                            "vga_fps": round(frames_per_second(detect, [greys[n] for n in names]), 2)}
        curves[label] = matched
        print(json.dumps({label: rows[label]}), flush=True)
    detector_path = args.detector or str(bundled_detector_path())
    result = {"command": " ".join(map(shlex.quote, [".venv/bin/python", *sys.argv])), "detector": detector_path,
              "settings": vars(cascade.settings), "threads": args.threads, "rows": rows}
    atomic_write_text(OUT / "results.json", json.dumps(result, indent=2) + "\n")
    roc_png(curves, OUT / "roc.png", title="CMU+MIT test scenes (130 images, 511 faces)")
    print("\n| detector | recall@10 FP | recall@50 FP | recall@100 FP | AP | VGA fps |\n|---|---|---|---|---|---|")
    for label, r in rows.items():
        print(f"| {label} | {r['recall_at_10_fp']:.3f} | {r['recall_at_50_fp']:.3f} | {r['recall_at_100_fp']:.3f} "
              f"| {r['average_precision']:.3f} | {r['vga_fps']:.1f} |")
    print(f"\n{result['command']}  →  {OUT}/results.json, {OUT}/roc.png")


if __name__ == "__main__":
    main()
