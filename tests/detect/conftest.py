"""Synthetic faces: a bright oval with two dark eyes and a mouth, pasted into cluttered grey scenes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def draw_face(size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size × size`` grey cartoon face filling the square like a face crop does."""
    face = np.full((size, size), rng.integers(60, 110), dtype=np.uint8)
    c, s = size / 2, size / 36  # drawn on a 36-pixel design, scaled
    skin = int(rng.integers(170, 230))
    cv2.ellipse(face, (round(c), round(c + s)), (round(13 * s), round(16 * s)), 0, 0, 360, skin, -1)
    for dx in (-6, 6):
        cv2.circle(face, (round(c + dx * s), round(c - 3 * s)), max(1, round(2.2 * s)), 30, -1)
    cv2.ellipse(face, (round(c), round(c + 8 * s)), (round(5 * s), max(1, round(2 * s))), 0, 0, 360, 50, -1)
    noise = rng.normal(0, 6, face.shape)
    return np.clip(face + noise, 0, 255).astype(np.uint8)


def clutter(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Random rectangles, lines and circles: plenty of edges, nothing face-like by construction."""
    scene = np.full((height, width), rng.integers(40, 200), dtype=np.uint8)
    for _ in range(40):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        shape = rng.integers(3)
        colour = int(rng.integers(0, 256))
        if shape == 0:
            cv2.rectangle(scene, (x, y), (x + int(rng.integers(5, 80)), y + int(rng.integers(5, 80))), colour, -1)
        elif shape == 1:
            cv2.line(scene, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))), colour, 2)
        else:
            cv2.circle(scene, (x, y), int(rng.integers(3, 30)), colour, int(rng.choice([-1, 2])))
    return scene


def paste_faces(scene: np.ndarray, boxes: list[tuple[int, int, int]], rng: np.random.Generator) -> np.ndarray:
    """Faces of side ``s`` at ``(x, y)``; returns the boxes ``x1 y1 x2 y2``."""
    out = []
    for x, y, s in boxes:
        scene[y : y + s, x : x + s] = draw_face(s, rng)
        out.append([x, y, x + s, y + s])
    return np.asarray(out, dtype=np.float64)


@pytest.fixture(scope="module")
def synthetic_detection_data(tmp_path_factory) -> dict[str, Path]:
    """Face crops, non-face scenes, and test scenes with annotated faces, written as files."""
    root = tmp_path_factory.mktemp("synthetic_faces")
    rng = np.random.default_rng(0)
    for folder in ("crops", "negatives", "scenes"):
        (root / folder).mkdir()
    for i in range(300):
        cv2.imwrite(str(root / "crops" / f"{i}.png"), draw_face(36, rng))
    for i in range(40):
        cv2.imwrite(str(root / "negatives" / f"{i}.png"), clutter(160, 200, rng))
    lines = []
    for i in range(4):
        scene = clutter(240, 320, rng)
        boxes = paste_faces(scene, [(20, 30, 40), (150, 60, 64), (250, 160, 48)], rng)
        cv2.imwrite(str(root / "scenes" / f"scene{i}.png"), scene)
        lines += [f"scene{i}.png " + " ".join(str(int(v)) for v in b) for b in boxes]
    (root / "scenes.txt").write_text("\n".join(lines) + "\n")
    return {"root": root, "crops": root / "crops", "negatives": root / "negatives",
            "scenes": root / "scenes", "annotations": root / "scenes.txt"}
