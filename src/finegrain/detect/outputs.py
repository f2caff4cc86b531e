"""Detection results as files: a square crop of each face, and each image with its boxes drawn.

Output names follow each input's path relative to the inputs' common folder (``a/x.jpg`` → ``a/x_face0.png``),
so two inputs with one file name never write one file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from finegrain.detect.faces import FaceDetector, draw_faces
from finegrain.errors import Problem
from finegrain.utils import atomic_write, output_names


def write_image(path: Path, rgb: np.ndarray) -> None:
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    atomic_write(path, lambda tmp: tmp.write_bytes(data.tobytes()))


def detect_to_files(detector: FaceDetector, paths: Sequence[Path], crops: Path | None = None, draw: Path | None = None,
                    margin: float = 0.2, size: int = 112) -> Iterator[tuple[Path, list[dict]] | Problem]:
    """Per input: (path, one dict per face: box, score and, with ``crops``, the crop file), or its Problem."""
    names = output_names(list(paths))
    for path, image, faces in detector.detect_paths(list(paths), crop_size=size if crops else None, margin=margin):
        if image is None:
            yield faces
            continue
        entries = [face.to_dict() for face in faces]
        for k, (face, entry) in enumerate(zip(faces, entries)):
            if crops is not None:
                target = Path(crops) / f"{names[path]}_face{k}.png"
                entry["crop"] = str(target)
                write_image(target, face.crop)
        if draw is not None:
            write_image(Path(draw) / f"{names[path]}_faces.png", draw_faces(image, faces))
        yield path, entries
