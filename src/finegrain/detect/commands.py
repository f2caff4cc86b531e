"""CLI subcommands for faces: ``finegrain detect`` and ``finegrain detector train|eval`` (thin, typed functions)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2

from finegrain.data.sources import expand_images
from finegrain.errors import DataError
from finegrain.utils import atomic_write


def _write_image(path: Path, rgb) -> None:
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    atomic_write(path, lambda tmp: tmp.write_bytes(data.tobytes()))


def cmd_detect(images: list[str], detector: str | None = None, as_json: bool = False, crops: str | None = None,
               margin: float = 0.2, size: int = 112, min_face: float | None = None, threshold: float = 0.5,
               draw: str | None = None) -> int:
    from finegrain.detect.faces import FaceDetector, draw_faces

    face_detector = FaceDetector.load(detector, threshold=threshold, min_face=min_face)
    problems, report = [], []
    for path, image, faces in face_detector.detect_paths(expand_images(images), crop_size=size if crops else None,
                                                         margin=margin):
        if image is None:
            problems.append(faces)
            continue
        entries = [face.to_dict() for face in faces]
        for k, (face, entry) in enumerate(zip(faces, entries)):
            if crops:
                entry["crop"] = str(Path(crops) / f"{path.stem}_face{k}.png")
                _write_image(Path(entry["crop"]), face.crop)
        if draw:
            _write_image(Path(draw) / f"{path.stem}_faces.png", draw_faces(image, faces))
        report.append({"path": str(path), "faces": entries})
        if not as_json:
            print(f"{path}: {len(faces)} face(s)")
            for f in faces:
                print("  " + " ".join(f"{v:.1f}" for v in f.box) + f"  {f.score:.3f}")
    if as_json:
        print(json.dumps(report, indent=2))
    if problems:
        print(f"finegrain detect: error: {DataError(f'{len(problems)} image(s) could not be read', problems)}",
              file=sys.stderr)
        return 2
    return 0


def cmd_detector_train(out: str, faces: list[str] | None = None, annotations: list[str] | None = None,
                       images: list[str] | None = None, negatives: list[str] | None = None, resume: bool = False,
                       crop_box: str = "0,0,1,1", **options) -> int:
    from finegrain.detect.sources import read_annotated_faces, read_face_crops, read_scenes
    from finegrain.detect.train import DetectorTrainConfig, train_detector
    from finegrain.errors import ConfigError

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


def cmd_detector_eval(annotations: str, images: str, detector: str | None = None, out: str = "detector-eval",
                      min_face: float | None = None) -> int:
    from finegrain.detect.evaluate import evaluate_detector
    from finegrain.detect.store import load_cascade

    cascade = load_cascade(detector, min_face=min_face)
    print(json.dumps(evaluate_detector(cascade, annotations, images, out), indent=2))
    return 0


def add_detection_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="find faces; print boxes, write crops or annotated images")
    p.add_argument("images", nargs="+", help="image files or folders of images")
    p.add_argument("--detector", help="detector file (default: the one bundled with finegrain)")
    p.add_argument("--json", dest="as_json", action="store_true", help="print JSON")
    p.add_argument("--crops", help="write a square crop of each face into this folder")
    p.add_argument("--margin", type=float, default=0.2, help="crop margin, a fraction of the face box (default: 0.2)")
    p.add_argument("--size", type=int, default=112, help="crop side in pixels (default: 112)")
    p.add_argument("--min-face", type=float, help="smallest face to look for, in pixels (default: the detector's)")
    p.add_argument("--threshold", type=float, default=0.5, help="lowest face score reported (default: 0.5)")
    p.add_argument("--draw", help="write each image with its boxes drawn into this folder")
    p.set_defaults(_handler=cmd_detect)

    detector = sub.add_parser("detector", help="train or evaluate a face detector").add_subparsers(
        dest="action", required=True, parser_class=sub._parser_class)
    p = detector.add_parser("train", help="train the 12/24/48 cascade and its calibration nets")
    p.add_argument("--out", required=True, help="detector file to write")
    p.add_argument("--faces", action="append", help="folder of face crops (repeatable)")
    p.add_argument("--crop-box", default="0,0,1,1",
                   help="where the face box lies in each --faces crop, as fractions x1,y1,x2,y2 (default: 0,0,1,1)")
    p.add_argument("--annotations", action="append", help="box file (list or COCO JSON) for the next --images")
    p.add_argument("--images", action="append", help="folder the preceding --annotations refer to")
    p.add_argument("--negatives", action="append", help="folder of images without faces (repeatable)")
    p.add_argument("--epochs", type=int, help="epochs per net (default: 5)")
    p.add_argument("--random-negatives", type=int, help="random non-face windows for the 12-net (default: 150000)")
    p.add_argument("--hard-negatives", type=int, help="most mined windows per later stage (default: 100000)")
    p.add_argument("--mining-turns-48", type=int,
                   help="quarter turns of each non-face image searched for the 48-net's hard negatives (default: 4)")
    p.add_argument("--bootstrap-rounds", type=int,
                   help="times the 48-net is retrained with the whole cascade's false positives added (default: 1)")
    p.add_argument("--seed", type=int, help="random seed (default: 0)")
    p.add_argument("--resume", action="store_true", help="keep the nets a killed run already trained")
    p.set_defaults(_handler=cmd_detector_train)

    p = detector.add_parser("eval", help="recall at 10/50/100 false positives, AP, VGA fps, ROC PNG")
    p.add_argument("detector", nargs="?", help="detector file (default: the bundled one)")
    p.add_argument("--annotations", required=True, help="box file: '<image> x1 y1 x2 y2' lines or COCO JSON")
    p.add_argument("--images", required=True, help="folder the annotations refer to")
    p.add_argument("--out", default="detector-eval", help="folder for metrics.json, roc.png")
    p.add_argument("--min-face", type=float, help="smallest face to look for (default: the detector's)")
    p.set_defaults(_handler=cmd_detector_eval)
