"""The tracker: detections of each frame → tracks, with births, deaths, hidden frames and an identity vote.

Pure bookkeeping over boxes and vectors; ``video.FaceTracker`` feeds it from a detector and an encoder.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from finegrain.boxes import iou_matrix
from finegrain.errors import ConfigError
from finegrain.track.assign import associate, association_cost
from finegrain.track.motion import BoxKalman


@dataclass
class TrackerSettings:
    min_hits: int = 3  # detections in a row before a track is born (a one-frame false detection never is)
    max_misses: int = 50  # frames a track lives on unseen (2 s at 25 fps): a face passing behind another
    # is lost to the detector well before and after it is wholly hidden
    appearance_weight: float = 0.5  # share of appearance in the association cost (the rest: box overlap)
    max_cost: float = 0.75
    min_iou: float = 0.1  # below this overlap a pair needs min_similarity to be matched at all
    min_similarity: float = 0.8
    momentum: float = 0.8  # how slowly a track's appearance follows its latest detection
    identity_threshold: float = 0.5  # cosine under which a frame votes "unknown"

    def __post_init__(self) -> None:
        if self.min_hits < 1:
            raise ConfigError(f"--min-hits must be 1 or more, got {self.min_hits}")
        if self.max_misses < 0:
            raise ConfigError(f"--max-misses must be 0 or more, got {self.max_misses}")
        for name in ("appearance_weight", "max_cost", "min_iou", "momentum"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class Observation:
    frame: int  # 0-based
    box: tuple[float, float, float, float]
    score: float
    identity: tuple[str, float] | None = None  # the gallery's nearest identity and its cosine similarity
    detected: bool = True  # False: filled in by the motion between two detections


@dataclass
class Track:
    track_id: int  # 0 until born; then 1, 2, ... in order of birth
    kalman: BoxKalman
    embedding: np.ndarray | None
    observations: list[Observation] = field(default_factory=list)
    predicted_frame: int = 0
    identity: str | None = None
    confidence: float | None = None

    @property
    def born(self) -> bool:
        return self.track_id > 0

    @property
    def last_frame(self) -> int:
        return self.observations[-1].frame

    @property
    def first_frame(self) -> int:
        return self.observations[0].frame

    def decide_identity(self, threshold: float) -> None:
        """Each detected frame votes for its nearest identity when at least ``threshold`` similar, else for
        unknown; the most votes win (ties: the higher total similarity). Confidence: the winner's mean cosine."""
        votes: Counter = Counter()
        similarity: dict[str | None, list[float]] = {}
        for obs in self.observations:
            if obs.identity is None or not obs.detected:
                continue
            label, sim = obs.identity
            key = label if sim >= threshold else None
            votes[key] += 1
            similarity.setdefault(key, []).append(sim)
        if not votes:
            self.identity, self.confidence = None, None
            return
        winner = max(votes, key=lambda k: (votes[k], sum(similarity[k]), k is not None))
        self.identity = winner
        self.confidence = float(np.mean(similarity[winner]))

    def filled(self, max_gap: int) -> list[Observation]:
        """Observations with the frames between two detections filled in linearly (a hidden face, or frames
        skipped by ``--every``), where the gap is at most ``max_gap`` frames."""
        out: list[Observation] = []
        for before, after in zip(self.observations, self.observations[1:]):
            out.append(before)
            gap = after.frame - before.frame
            if 1 < gap <= max_gap + 1:
                a, b = np.asarray(before.box), np.asarray(after.box)
                for step in range(1, gap):
                    t = step / gap
                    out.append(Observation(before.frame + step, tuple(map(float, (1 - t) * a + t * b)),
                                           min(before.score, after.score), detected=False))
        return out + self.observations[-1:]


class Tracker:
    """Call ``update`` with each frame's detections (frames in increasing order; skipped frames are fine)."""

    def __init__(self, settings: TrackerSettings | None = None):
        self.settings = settings or TrackerSettings()
        self.active: list[Track] = []
        self.ended: list[Track] = []
        self._next_id = 1

    def update(self, frame: int, boxes: np.ndarray, scores: np.ndarray, embeddings: np.ndarray | None = None,
               identities: list[tuple[str, float] | None] | None = None) -> list[Track]:
        """Associate this frame's detections; returns the born tracks seen in it."""
        s = self.settings
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        predicted = np.array([t.kalman.predict(frame - t.predicted_frame) for t in self.active]).reshape(-1, 4)
        for track in self.active:
            track.predicted_frame = frame
        similarity = None
        if embeddings is not None and self.active and len(boxes):
            have = [t.embedding is not None for t in self.active]
            if all(have):
                similarity = np.stack([t.embedding for t in self.active]) @ np.asarray(embeddings).T
        cost = association_cost(iou_matrix(predicted, boxes), similarity, s.appearance_weight, s.min_iou,
                                s.min_similarity)
        matches, lost, new = associate(cost, s.max_cost)
        seen = []
        for t, d in matches:
            track = self.active[t]
            track.kalman.update(boxes[d])
            self._observe(track, frame, boxes[d], scores[d], embeddings, identities, d)
            seen.append(track)
        for t in lost:
            track = self.active[t]
            if not track.born and track.observations:  # a tentative track must be seen in a row
                track.observations.clear()
        for d in new:
            track = Track(0, BoxKalman(boxes[d]), None, predicted_frame=frame)
            self._observe(track, frame, boxes[d], scores[d], embeddings, identities, d)
            self.active.append(track)
            seen.append(track)
        still = []
        for track in self.active:
            gone = not track.observations or frame - track.last_frame > s.max_misses
            if gone:
                if track.born:
                    self.ended.append(track)
            else:
                still.append(track)
        self.active = still
        return [t for t in seen if t.born and t in still]

    def _observe(self, track: Track, frame: int, box, score, embeddings, identities, d: int) -> None:
        track.observations.append(Observation(frame, tuple(map(float, box)), float(score),
                                              identities[d] if identities is not None else None))
        if embeddings is not None:
            e = np.asarray(embeddings[d], np.float32)
            mixed = e if track.embedding is None else self.settings.momentum * track.embedding + (
                1 - self.settings.momentum) * e
            track.embedding = mixed / max(float(np.linalg.norm(mixed)), 1e-12)
        if not track.born and len(track.observations) >= self.settings.min_hits:
            track.track_id = self._next_id
            self._next_id += 1

    def predicted_boxes(self, frame: int) -> list[tuple[Track, np.ndarray]]:
        """Born tracks still alive and where their motion puts them at ``frame`` (without changing them)."""
        return [(t, t.kalman.peek(frame - t.predicted_frame)) for t in self.active if t.born]

    def finish(self) -> list[Track]:
        """Every track that was born, in order of birth, each with its identity decided."""
        tracks = sorted(self.ended + [t for t in self.active if t.born], key=lambda t: t.track_id)
        for track in tracks:
            track.decide_identity(self.settings.identity_threshold)
        return tracks
