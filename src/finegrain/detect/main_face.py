"""The main face of a photo, cropped: what a face model (``finegrain train --faces``) sees instead of the photo.

The main face is the largest face the bundled detector finds; its square box, grown by ``margin`` of its side
on every side, is cut out at the model's input size. A photo in which no face is found is used whole (resized
like any image), and callers say how many were (``prepare`` adds a note).
"""

from __future__ import annotations

import threading

import numpy as np

from finegrain.data.images import resize_square

FACE_MARGIN = 0.2  # the detector's boxes hug the face; a fifth of the side on each side keeps the hairline and chin


class MainFaceCropper:
    def __init__(self, margin: float = FACE_MARGIN, detector=None):
        self.margin = float(margin)
        self._detector = detector
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        """Names the cache rows this cropping produces (a different margin is a different image)."""
        return f"face{self.margin:.2f}"

    @property
    def detector(self):
        with self._lock:  # loaded once, on first use, even when decoding threads ask together
            if self._detector is None:
                from finegrain.detect.faces import FaceDetector

                self._detector = FaceDetector.load()
        return self._detector

    def crop(self, image: np.ndarray, size: int) -> tuple[np.ndarray, bool]:
        """(``size``×``size`` RGB crop of the main face, True), or (the whole image resized, False)."""
        from finegrain.detect.faces import crop_face

        faces = self.detector.detect(image)
        if not faces:
            return resize_square(image, size), False
        largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        return crop_face(image, largest.box, self.margin, size), True
