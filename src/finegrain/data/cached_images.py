"""Decoded, resized images backed by the cache's memmap, aligned with the files that loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from finegrain.errors import Problem


class CachedImages:
    """`paths[i]` (input position `indices[i]`) is stored in row `rows[i]` of the cache file.

    Items are copies of (S, S, 3) uint8 RGB rows, so callers may modify them freely.
    """

    def __init__(
        self,
        data_path: Path,
        image_size: int,
        rows: np.ndarray,
        paths: list[Path],
        indices: np.ndarray,
        problems: list[Problem],
        without_face: list[Path] | None = None,
    ):
        self.data_path = Path(data_path)
        self.image_size = image_size
        self.rows = np.asarray(rows, dtype=np.int64)
        self.paths = list(paths)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.problems = list(problems)
        self.without_face = list(without_face or [])  # face crops asked for, none found: the images kept whole
        self._memmap: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _data(self) -> np.ndarray:
        # Opened lazily: after unpickling in a DataLoader worker, and sized to the file as it is now
        # (it only grows, so every row we reference is inside).
        if self._memmap is None:
            s = self.image_size
            n_rows = self.data_path.stat().st_size // (s * s * 3)
            self._memmap = np.memmap(self.data_path, dtype=np.uint8, mode="r", shape=(n_rows, s, s, 3))
        return self._memmap

    def __getitem__(self, i: int) -> np.ndarray:
        return np.array(self._data()[self.rows[i]])

    def array(self) -> np.ndarray:
        """All images as one (N, S, S, 3) uint8 array in memory, for bulk embedding or statistics."""
        if len(self) == 0:
            return np.empty((0, self.image_size, self.image_size, 3), dtype=np.uint8)
        return self._data()[self.rows]

    def subset(self, positions: np.ndarray | list[int]) -> CachedImages:
        """The images at `positions` (into this object), sharing the same cache file."""
        positions = np.asarray(positions, dtype=np.int64)
        return CachedImages(
            self.data_path,
            self.image_size,
            rows=self.rows[positions],
            paths=[self.paths[p] for p in positions],
            indices=self.indices[positions],
            problems=self.problems,
        )

    def __getstate__(self) -> dict:
        # A memmap pickles as a full in-memory copy; ship the path and reopen in the worker instead.
        state = self.__dict__.copy()
        state["_memmap"] = None
        return state
