"""A constant-velocity Kalman filter on a face box, to follow a face while it is hidden or between detections.

State: centre x, y, width, height and their velocities (per frame). Width and height move independently so
a face walking towards the camera grows smoothly; noise scales with the box size, as in SORT/DeepSORT.
"""

from __future__ import annotations

import numpy as np

POSITION_NOISE = 1 / 20  # of the box height: measurement and process noise
VELOCITY_NOISE = 1 / 160


def _to_state(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], np.float64)


def _to_box(state: np.ndarray) -> np.ndarray:
    cx, cy, w, h = state[:4]
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class BoxKalman:
    def __init__(self, box: np.ndarray):
        self.x = np.r_[_to_state(np.asarray(box, np.float64)), np.zeros(4)]
        h = self.x[3]
        self.P = np.diag(np.r_[np.full(4, (2 * POSITION_NOISE * h) ** 2), np.full(4, (10 * VELOCITY_NOISE * h) ** 2)])
        self.F = np.eye(8)
        self.F[:4, 4:] = np.eye(4)
        self.H = np.eye(4, 8)

    def predict(self, steps: int = 1) -> np.ndarray:
        """Advance ``steps`` frames; returns the predicted box."""
        for _ in range(steps):
            h = max(self.x[3], 1.0)
            q = np.r_[np.full(4, (POSITION_NOISE * h) ** 2), np.full(4, (VELOCITY_NOISE * h) ** 2)]
            self.x = self.F @ self.x
            self.P = self.F @ self.P @ self.F.T + np.diag(q)
        return self.box

    def peek(self, steps: int) -> np.ndarray:
        """Where the box will be ``steps`` frames on, without changing the filter."""
        x = self.x.copy()
        x[:4] += steps * x[4:]
        return _to_box(x)

    def update(self, box: np.ndarray) -> None:
        z = _to_state(np.asarray(box, np.float64))
        r = np.diag(np.full(4, (POSITION_NOISE * max(self.x[3], 1.0)) ** 2))
        s = self.H @ self.P @ self.H.T + r
        gain = self.P @ self.H.T @ np.linalg.inv(s)
        self.x = self.x + gain @ (z - self.H @ self.x)
        self.P = (np.eye(8) - gain @ self.H) @ self.P

    @property
    def box(self) -> np.ndarray:
        return _to_box(self.x)
