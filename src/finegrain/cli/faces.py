"""Face commands: ``finegrain detect`` and ``finegrain detector train|eval``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finegrain.cli.registry import arg, command, device_arg, group
from finegrain.errors import ConfigError, DataError, Problem

group("detector", "train or evaluate a face detector")


@command("detect", "find faces; print boxes, write crops or annotated images",
         arg("images", nargs="+", help="image files or folders of images"),
         arg("--detector", help="detector file (default: the one bundled with finegrain)"),
         arg("--json", dest="as_json", action="store_true", help="print JSON"),
         arg("--crops", help="write a square crop of each face into this folder (named after each input's path "
                             "relative to the inputs' common folder)"),
         arg("--margin", type=float, default=0.2, help="crop margin, a fraction of the face box (default: 0.2)"),
         arg("--size", type=int, default=112, help="crop side in pixels (default: 112)"),
         arg("--min-face", type=float, help="smallest face to look for, in pixels (default: the detector's)"),
         arg("--threshold", type=float, default=0.5, help="lowest face score reported (default: 0.5)"),
         arg("--draw", help="write each image with its boxes drawn into this folder"),
         device_arg())
def detect_command(images: list[str], detector: str | None = None, as_json: bool = False, crops: str | None = None,
                   margin: float = 0.2, size: int = 112, min_face: float | None = None, threshold: float = 0.5,
                   draw: str | None = None, device: str = "auto") -> int:
    from finegrain.data.sources import expand_images
    from finegrain.detect.faces import FaceDetector
    from finegrain.detect.outputs import detect_to_files

    face_detector = FaceDetector.load(detector, threshold=threshold, min_face=min_face, device=device)
    problems, report = [], []
    for result in detect_to_files(face_detector, expand_images(images), Path(crops) if crops else None,
                                  Path(draw) if draw else None, margin=margin, size=size):
        if isinstance(result, Problem):
            problems.append(result)
            continue
        path, faces = result
        report.append({"path": str(path), "faces": faces})
        if not as_json:
            print(f"{path}: {len(faces)} face(s)")
            for f in faces:
                print("  " + " ".join(f"{v:.1f}" for v in f["box"]) + f"  {f['score']:.3f}")
    if as_json:
        print(json.dumps(report, indent=2))
    if problems:
        print(f"finegrain detect: error: {DataError(f'{len(problems)} image(s) could not be read', problems)}",
              file=sys.stderr)
        return 2
    return 0


@command("detector train", "train the 12/24/48 cascade and its calibration nets",
         arg("--out", required=True, help="detector file to write"),
         arg("--faces", action="append", help="folder of face crops (repeatable)"),
         arg("--crop-box", default="0,0,1,1",
             help="where the face box lies in each --faces crop, as fractions x1,y1,x2,y2 (default: 0,0,1,1)"),
         arg("--annotations", action="append", help="box file (list or COCO JSON) for the next --images"),
         arg("--images", action="append", help="folder the preceding --annotations refer to"),
         arg("--negatives", action="append", help="folder of images without faces (repeatable)"),
         arg("--epochs", type=int, help="epochs per net (default: 5)"),
         arg("--random-negatives", type=int, help="random non-face windows for the 12-net (default: 150000)"),
         arg("--hard-negatives", type=int, help="most mined windows per later stage (default: 100000)"),
         arg("--mining-turns-48", type=int,
             help="quarter turns of each non-face image searched for the 48-net's hard negatives (default: 4)"),
         arg("--bootstrap-rounds", type=int,
             help="times the 48-net is retrained with the whole cascade's false positives added (default: 1)"),
         arg("--seed", type=int, help="random seed (default: 0)"),
         arg("--resume", action="store_true", help="keep the nets a killed run already trained"))
def detector_train_command(out: str, faces: list[str] | None = None, annotations: list[str] | None = None,
                           images: list[str] | None = None, negatives: list[str] | None = None, resume: bool = False,
                           crop_box: str = "0,0,1,1", **options) -> int:
    from finegrain.detect.sources import read_annotated_faces, read_face_crops, read_scenes
    from finegrain.detect.train import DetectorTrainConfig, train_detector

    annotations, images = annotations or [], images or []
    if len(annotations) != len(images):
        raise ConfigError(f"--annotations and --images come in pairs: got {len(annotations)} and {len(images)}")
    cfg = DetectorTrainConfig(out=out, **{k: v for k, v in options.items() if v is not None}).validate()
    try:
        box = tuple(float(v) for v in crop_box.split(","))
        if len(box) != 4:
            raise ValueError
    except ValueError:
        raise ConfigError(f"--crop-box: expected four fractions x1,y1,x2,y2, got {crop_box!r}") from None
    face_images = [f for folder in faces or [] for f in read_face_crops(folder, box)]
    face_images += [f for a, i in zip(annotations, images) for f in read_annotated_faces(a, i)]
    scenes = [s for folder in negatives or [] for s in read_scenes(folder)]
    path = train_detector(face_images, scenes, cfg, resume=resume)
    print(json.dumps({"detector": str(path), "faces": len(face_images), "scenes": len(scenes)}, indent=2))
    return 0


@command("detector eval", "recall at 10/50/100 false positives, AP, VGA fps, ROC PNG",
         arg("detector", nargs="?", help="detector file (default: the bundled one)"),
         arg("--annotations", required=True, help="box file: '<image> x1 y1 x2 y2' lines or COCO JSON"),
         arg("--images", required=True, help="folder the annotations refer to"),
         arg("--out", default="detector-eval", help="folder for metrics.json, roc.png"),
         arg("--min-face", type=float, help="smallest face to look for (default: the detector's)"))
def detector_eval_command(annotations: str, images: str, detector: str | None = None, out: str = "detector-eval",
                          min_face: float | None = None) -> int:
    from finegrain.detect.evaluate import evaluate_detector
    from finegrain.detect.store import load_cascade

    cascade = load_cascade(detector, min_face=min_face)
    print(json.dumps(evaluate_detector(cascade, annotations, images, out), indent=2))
    return 0
