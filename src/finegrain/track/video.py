"""Faces through a video: the detector on every (or every N-th) frame, embeddings of each face, the tracker,
and the outputs (an annotated video, JSON tracks, MOTChallenge rows)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from finegrain.boxes import drop_nested
from finegrain.detect.faces import FaceDetector, crop_face
from finegrain.encoders import Encoder
from finegrain.errors import ConfigError, FinegrainError
from finegrain.index.gallery import GalleryIndex
from finegrain.track.appearance import describe_crops
from finegrain.track.tracker import Track, Tracker, TrackerSettings

FACE_MARGIN = 0.2  # as the service crops faces, so a gallery built there matches


class VideoError(FinegrainError):
    """A video that cannot be read (the message names the file)."""


@dataclass(frozen=True)
class TrackedFace:
    track_id: int
    box: tuple[float, float, float, float]
    detected: bool  # False: where the track's motion puts the face on a frame without detection


class FaceTracker:
    """Feed RGB frames in order with ``process``; ``finish`` returns every track with its identity."""

    def __init__(self, detector: FaceDetector, encoder: Encoder | None = None, gallery: GalleryIndex | None = None,
                 settings: TrackerSettings | None = None, every: int = 1):
        if every < 1:
            raise ConfigError(f"--every must be 1 or more, got {every}")
        if gallery is not None and encoder is None:
            raise ConfigError("a gallery needs the encoder its vectors were made with")
        self.detector, self.encoder, self.gallery, self.every = detector, encoder, gallery, every
        self.tracker = Tracker(settings)
        self.frame = 0
        self._labels = gallery.labels if gallery is not None else None
        if self._labels is not None and all(label is None for label in self._labels):
            raise ConfigError("the index has no labels, so it cannot name anyone; build it from labelled photos")

    @classmethod
    def create(cls, index: str | Path | None = None, detector: str | Path | None = None,
               settings: TrackerSettings | None = None, every: int = 1) -> FaceTracker:
        """The bundled detector (or ``detector``); with ``index``, its model embeds faces and its labels name them."""
        encoder = gallery = None
        if index is not None:
            from finegrain.index.build import index_encoder

            gallery, encoder = index_encoder(index)
        return cls(FaceDetector.load(detector), encoder, gallery, settings, every)

    def _embed(self, frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, list | None]:
        if self.encoder is None:
            crops = [crop_face(frame, box, FACE_MARGIN, 48) for box in boxes]
            return describe_crops(crops), None
        crops = np.stack([crop_face(frame, box, FACE_MARGIN, self.encoder.image_size) for box in boxes])
        vectors = self.encoder.encode_array(crops)
        identities = None
        if self.gallery is not None and len(self.gallery):
            hits = self.gallery.search(vectors, k=min(50, len(self.gallery)))
            identities = [next(((h.label, h.similarity) for h in row if h.label is not None), None) for row in hits]
        return vectors, identities

    def process(self, frame: np.ndarray) -> list[TrackedFace]:
        """The faces of the born tracks in this frame (detected, or carried by motion between detections)."""
        index = self.frame
        self.frame += 1
        if index % self.every:
            return [TrackedFace(t.track_id, tuple(map(float, box)), False)
                    for t, box in self.tracker.predicted_boxes(index)]
        faces = self.detector.detect(frame)
        boxes = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
        scores = np.array([f.score for f in faces], np.float64)
        keep = drop_nested(boxes, scores)
        boxes, scores, faces = boxes[keep], scores[keep], [faces[i] for i in keep]
        vectors, identities = self._embed(frame, boxes) if len(faces) else (None, None)
        seen = self.tracker.update(index, boxes, scores, vectors, identities)
        return [TrackedFace(t.track_id, t.observations[-1].box, True) for t in seen]

    def finish(self) -> list[Track]:
        return self.tracker.finish()


def read_frames(path: str | Path) -> tuple[Iterator[np.ndarray], int, float, tuple[int, int]]:
    """(RGB frames, frame count as the container states it, fps, (width, height)); ``VideoError`` when the file
    cannot be opened or has no frame."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok or first is None:
        capture.release()
        raise VideoError(f"{path}: not a readable video, or it has no frames")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0) or 25.0
    size = (first.shape[1], first.shape[0])

    def frames():
        frame = first
        try:
            while frame is not None:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                ok, frame = capture.read()
                if not ok:
                    frame = None
        finally:
            capture.release()

    return frames(), count, fps, size
