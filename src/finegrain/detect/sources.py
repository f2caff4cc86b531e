"""Load detector training inputs: face-crop folders, annotated images, non-face scene folders (all to grey)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from finegrain.data.images import ImageError, decode_image
from finegrain.data.sources import IMAGE_EXTENSIONS
from finegrain.detect.annotations import read_annotations
from finegrain.detect.samples import FaceImage, face_window
from finegrain.detect.windows import to_grey
from finegrain.errors import ConfigError, DataError, Problem
from finegrain.utils import progress_bar


def image_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"{folder}: no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def _read_greys(paths: list[Path], what: str) -> list[np.ndarray]:
    greys, problems = [], []
    for path in progress_bar(paths, desc=f"reading {what}", unit="img"):
        try:
            greys.append(to_grey(decode_image(path)))
        except ImageError as error:
            problems.append(error.problem)
    if problems:
        raise DataError(f"{len(problems)} unusable {what} image(s)", problems)
    return greys


FULL_CROP = (0.0, 0.0, 1.0, 1.0)


def read_face_crops(folder: str | Path, face_box: tuple[float, float, float, float] = FULL_CROP) -> list[FaceImage]:
    """Each image is one face crop; ``face_box`` is where the face's box lies in every crop, as fractions of its
    width and height (default: the whole crop). Crops from different sources frame faces differently, and a
    detector learns one framing: this maps each source onto it."""
    x1, y1, x2, y2 = face_box
    if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
        raise ConfigError(f"--crop-box: needs 0 ≤ x1 < x2 ≤ 1 and 0 ≤ y1 < y2 ≤ 1, got {face_box}")
    greys = _read_greys(image_files(folder), "face crop")
    fractions = np.array([[x1, y1, x2, y2]])
    return [FaceImage(g, face_window(fractions * ([g.shape[1], g.shape[0]] * 2)), context=False) for g in greys]


def read_annotated_faces(annotations: str | Path, images: str | Path) -> list[FaceImage]:
    """Images named in an annotation file (list or COCO JSON), with their boxes made square windows."""
    boxes = read_annotations(annotations)
    root = Path(images)
    missing = [Problem(root / name, "named in the annotations but not found") for name in boxes if
               not (root / name).is_file()]
    if missing:
        raise DataError(f"{annotations}: {len(missing)} annotated image(s) missing under {root}", missing)
    names = [name for name, b in boxes.items() if len(b)]
    greys = _read_greys([root / name for name in names], "annotated")
    return [FaceImage(g, face_window(boxes[name])) for g, name in zip(greys, names)]


def read_scenes(folder: str | Path) -> list[np.ndarray]:
    """Non-face images: every window in them is a negative."""
    return _read_greys(image_files(folder), "non-face")
