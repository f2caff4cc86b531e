"""Retrieval grid: each row a query and its top matches, framed green (same label) or red."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from finegrain.utils import atomic_write

GREEN, RED, BLUE = (40, 170, 60), (210, 40, 40), (40, 90, 210)


def _cell(img: np.ndarray, colour: tuple[int, int, int], size: int, border: int = 4) -> np.ndarray:
    interp = cv2.INTER_NEAREST if img.shape[0] < size else cv2.INTER_AREA
    inner = cv2.resize(img, (size - 2 * border, size - 2 * border), interpolation=interp)
    return cv2.copyMakeBorder(inner, border, border, border, border, cv2.BORDER_CONSTANT, value=colour)


def retrieval_grid(
    images: np.ndarray,
    labels: np.ndarray,
    embeddings: np.ndarray,
    path: Path,
    queries: int = 8,
    top: int = 6,
    cell: int = 96,
    seed: int = 0,
) -> Path:
    """Write a PNG of ``queries`` random queries (blue frame) and their ``top`` nearest neighbours."""
    n = len(images)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(n, size=min(queries, n), replace=False)
    sims = embeddings[chosen] @ embeddings.T
    sims[np.arange(len(chosen)), chosen] = -np.inf  # a query is not its own match
    order = np.argsort(-sims, axis=1)[:, :top]
    gap = np.full((cell, 12, 3), 255, np.uint8)
    rows = []
    for q, neighbours in zip(chosen, order):
        cells = [_cell(images[q], BLUE, cell), gap]
        cells += [_cell(images[j], GREEN if labels[j] == labels[q] else RED, cell) for j in neighbours]
        rows.append(np.concatenate(cells, axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    grid = np.concatenate(rows, axis=0)
    write_png(Path(path), grid)
    return Path(path)


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Encode first, then write atomically (imwrite picks the format from the temporary name)."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    atomic_write(path, lambda p: p.write_bytes(data.tobytes()))
