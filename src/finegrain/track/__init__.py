"""Faces through video: detect, associate detections to tracks (Hungarian, motion, appearance), name tracks.

    from finegrain.track import FaceTracker
    tracker = FaceTracker.create(index="people.idx")      # or FaceTracker.create() for tracks without names
    for frame in frames:                                  # RGB uint8 arrays you supply
        for face in tracker.process(frame):
            print(face.track_id, face.box)
    for track in tracker.finish():
        print(track.track_id, track.identity, track.first_frame, track.last_frame)
"""

from finegrain.track.tracker import Track, Tracker, TrackerSettings
from finegrain.track.video import FaceTracker, TrackedFace

__all__ = ["FaceTracker", "Track", "TrackedFace", "Tracker", "TrackerSettings"]
