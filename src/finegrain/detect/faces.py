"""The face-detection API: find faces in images and cut square crops ready for the embedding and scoring tasks.

    from finegrain.detect.faces import FaceDetector
    detector = FaceDetector.load()                # the bundled detector, or FaceDetector.load("my.pt")
    for face in detector.detect(image_rgb, crop_size=112):
        print(face.box, face.score, face.crop.shape)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from finegrain.boxes import scale_boxes, square
from finegrain.data.images import ImageError, decode_image
from finegrain.detect.cascade import Cascade
from finegrain.detect.store import load_cascade
from finegrain.devices import resolve_device
from finegrain.errors import Problem


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1 y1 x2 y2 in the image's pixels
    score: float  # the 48-net's face probability
    crop: np.ndarray | None = None  # square RGB crop, when asked for

    def to_dict(self) -> dict:
        return {"box": [round(v, 1) for v in self.box], "score": round(self.score, 4)}


def crop_face(image: np.ndarray, box: Sequence[float], margin: float = 0.2, size: int = 112) -> np.ndarray:
    """A ``size × size`` crop of the square around ``box``, grown by ``margin`` (a fraction of the side) on
    every side; parts outside the image repeat its border, so a face at the edge still gets a centred crop."""
    x1, y1, x2, y2 = scale_boxes(square(np.asarray(box, dtype=np.float64)), 1 + 2 * margin)[0]
    side = x2 - x1
    # One affine warp maps the (sub-pixel) square onto the output grid; INTER_AREA-like smoothing comes from
    # blurring first when the square is much larger than the output.
    if side > 2 * size:
        sigma = 0.5 * side / size
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    s = size / side
    matrix = np.array([[s, 0, -x1 * s + 0.5 * s - 0.5], [0, s, -y1 * s + 0.5 * s - 0.5]])
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def draw_faces(image: np.ndarray, faces: Iterable[Face]) -> np.ndarray:
    """A copy of the RGB image with each face's box and score drawn on it."""
    out = np.ascontiguousarray(image.copy())
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for face in faces:
        x1, y1, x2, y2 = (round(v) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 255, 0), thickness)
        cv2.putText(out, f"{face.score:.2f}", (x1, max(y1 - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thickness, (0, 255, 0), thickness)
    return out


class FaceDetector:
    """A cascade plus the product around it: decoding, a score threshold, crops."""

    def __init__(self, cascade: Cascade, threshold: float = 0.5):
        self.cascade = cascade
        self.threshold = threshold

    @classmethod
    def load(cls, path: str | Path | None = None, threshold: float = 0.5, device: str = "cpu",
             **settings) -> FaceDetector:
        """``path`` None: the detector bundled with finegrain; ``settings`` override e.g. ``min_face``; ``device``:
        where its nets compute (window cropping and NMS stay on the CPU)."""
        target = resolve_device(device)
        cascade = load_cascade(path, **settings)
        return cls(cascade.to(target) if target.type != "cpu" else cascade, threshold)

    def _faces(self, image: np.ndarray, found, crop_size: int | None, margin: float) -> list[Face]:
        keep = found.scores >= self.threshold
        return [Face(tuple(map(float, box)), float(score),
                     crop_face(image, box, margin, crop_size) if crop_size else None)
                for box, score in zip(found.boxes[keep], found.scores[keep])]

    def detect(self, image: np.ndarray, crop_size: int | None = None, margin: float = 0.2) -> list[Face]:
        """Faces in one RGB (or grey) image, best first."""
        return self._faces(image, self.cascade.detect(image), crop_size, margin)

    def detect_paths(self, paths: Sequence[str | Path], crop_size: int | None = None, margin: float = 0.2,
                     chunk: int = 8) -> Iterator[tuple[Path, np.ndarray | None, list[Face] | Problem]]:
        """For each path: (path, image, faces), or (path, None, Problem) when the file cannot be used.

        Images stream through the cascade in chunks, so their windows share network batches.
        """
        images: list[tuple[Path, np.ndarray]] = []

        def flush():
            results = self.cascade.detect_many((img for _, img in images), chunk=chunk)
            for (path, img), found in zip(images, results):
                yield path, img, self._faces(img, found, crop_size, margin)
            images.clear()

        for path in map(Path, paths):
            try:
                images.append((path, decode_image(path)))
            except ImageError as error:
                yield path, None, error.problem
            if len(images) == chunk:
                yield from flush()
        yield from flush()
