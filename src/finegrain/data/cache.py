"""Decode-once image cache: every file is decoded and resized once, epochs read a memmap.

Layout in the cache folder, per image size S:
  images_S.u8    append-only rows of S*S*3 uint8 (RGB), read through np.memmap;
  index_S.json   {content key: [row, width, height]}, replaced atomically after rows are appended.
Face crops (``crop``) live in ``images_S_face<margin>.u8`` beside them, their entries with a 4th value: 1 when
a face was found, 0 when the image was kept whole.
The key is a hash of the file's bytes, so an edited file invalidates itself and duplicate files share
a row. Rows are never rewritten or truncated, so readers holding an older index stay valid while
another process appends; writers serialise on a lock file (where fcntl exists).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from finegrain.data.cached_images import CachedImages
from finegrain.data.images import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_SIDE,
    ImageError,
    decode_image,
    header_size,
    read_file,
    resize_square,
    size_problem,
)
from finegrain.errors import Problem
from finegrain.utils import progress_bar

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent writers are unsupported there
    fcntl = None

INDEX_VERSION = 1
_CHUNK = 256  # images decoded between appends: bounds memory to CHUNK decoded rows
_PROGRESS_MIN = 200  # below this, a progress bar is noise


def default_cache_dir() -> Path:
    """$FINEGRAIN_CACHE, else ~/.cache/finegrain."""
    env = os.environ.get("FINEGRAIN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "finegrain"


def content_key(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class DecodeCache:
    """Decodes each distinct file once per image size and serves rows from a memmap afterwards."""

    def __init__(
        self,
        cache_dir: Path | str | None = None,
        image_size: int = 224,
        *,
        min_side: int = DEFAULT_MIN_SIDE,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        workers: int | None = None,
        crop=None,
    ):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.image_size = int(image_size)
        self.min_side = min_side
        self.max_pixels = max_pixels
        # cv2 releases the GIL while decoding, so threads scale without pickling images between processes.
        self.workers = workers or min(8, os.cpu_count() or 1)
        self.row_bytes = self.image_size * self.image_size * 3
        # ``crop`` (a MainFaceCropper): rows are face crops, kept apart from plain rows of the same size.
        self.crop = crop
        name = f"{self.image_size}_{crop.key}" if crop is not None else f"{self.image_size}"
        self.data_path = self.cache_dir / f"images_{name}.u8"
        self.index_path = self.cache_dir / f"index_{name}.json"
        self._lock_path = self.cache_dir / f"lock_{name}"

    # -- public -----------------------------------------------------------------------------------
    def load(self, paths: Sequence[Path | str], progress: bool = True) -> CachedImages:
        """Rows for `paths`; unusable files become `problems` instead of raising."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        paths = [Path(p) for p in paths]
        index = self._read_index()
        keys: list[str | None] = [None] * len(paths)
        problems: dict[int, Problem] = {}
        missing: dict[str, int] = {}  # key -> first position needing a decode

        with ThreadPoolExecutor(self.workers) as pool:
            for i, (key, problem) in enumerate(pool.map(self._hash, paths, chunksize=16)):
                if problem is not None:
                    problems[i] = problem
                    continue
                keys[i] = key
                if key not in index:
                    missing.setdefault(key, i)
            if missing:
                self._decode_missing(pool, paths, keys, missing, index, problems, progress)

        rows, good, positions, uncropped = [], [], [], []
        for i, key in enumerate(keys):
            if i in problems:
                continue
            if key not in index:  # changed between hashing and decoding; its new key got the row
                problems[i] = Problem(paths[i], "file changed while loading; run again")
                continue
            row, width, height = index[key][:3]
            # Re-checked on every load: the file may have been cached under looser limits.
            reason = size_problem(width, height, self.min_side, self.max_pixels)
            if reason:
                problems[i] = Problem(paths[i], reason)
                continue
            rows.append(row)
            good.append(paths[i])
            if self.crop is not None and not index[key][3]:
                uncropped.append(paths[i])
            positions.append(i)
        return CachedImages(
            self.data_path,
            self.image_size,
            rows=np.asarray(rows, dtype=np.int64),
            paths=good,
            indices=np.asarray(positions, dtype=np.int64),
            problems=[problems[i] for i in sorted(problems)],
            without_face=uncropped,
        )

    # -- decoding ---------------------------------------------------------------------------------
    def _hash(self, path: Path) -> tuple[str | None, Problem | None]:
        try:
            return content_key(read_file(path)), None
        except ImageError as e:
            return None, e.problem

    def _decode(self, path: Path) -> tuple[str, np.ndarray, int, int, list[int]] | Problem:
        try:
            data = read_file(path)
            # A face is found at full resolution; a reduced decode is only for plain resizing.
            img = decode_image(path, data, min_side=self.min_side, max_pixels=self.max_pixels,
                               target_size=None if self.crop is not None else self.image_size)
        except ImageError as e:
            return e.problem
        # Full size for the limits; a reduced JPEG decode hides it, the header does not.
        width, height = header_size(data) or (img.shape[1], img.shape[0])
        if self.crop is not None:
            row, found = self.crop.crop(img, self.image_size)
            extra = [int(found)]
        else:
            row, extra = resize_square(img, self.image_size), []
        # Re-hash: the file may have changed since the first pass; the row must match these bytes.
        return content_key(data), row, width, height, extra

    def _decode_missing(self, pool, paths, keys, missing, index, problems, progress) -> None:
        todo = list(missing.values())
        bar = progress_bar(
            total=len(todo),
            desc=f"decoding images ({self.image_size}px)",
            unit="img",
            enabled=progress and len(todo) > _PROGRESS_MIN,
        )
        added: dict[str, list[int]] = {}
        with bar:
            for start in range(0, len(todo), _CHUNK):
                chunk = todo[start : start + _CHUNK]
                decoded = []
                for i, result in zip(chunk, pool.map(lambda i: self._decode(paths[i]), chunk)):
                    if isinstance(result, Problem):
                        problems[i] = result
                    else:
                        decoded.append((i, result))
                bar.update(len(chunk))
                if decoded:
                    first_row = self._append(np.stack([r[1] for _, r in decoded]))
                    for n, (i, (key, _, width, height, extra)) in enumerate(decoded):
                        added[key] = index[key] = [first_row + n, width, height, *extra]
                        keys[i] = key
        # Duplicates of a file that failed to decode share its problem.
        failed = {keys[i]: problems[i].reason for i in todo if i in problems}
        for i, key in enumerate(keys):
            if i not in problems and key in failed:
                problems[i] = Problem(paths[i], failed[key])
        if added:
            self._write_index(added)

    # -- storage ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, "a") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(lock, fcntl.LOCK_UN)

    def _append(self, batch: np.ndarray) -> int:
        """Append rows; returns the first new row number."""
        with self._locked(), open(self.data_path, "ab") as f:
            size = f.seek(0, os.SEEK_END)
            partial = size % self.row_bytes
            if partial:  # a crashed writer left half a row: pad it, never truncate under readers
                f.write(bytes(self.row_bytes - partial))
                size += self.row_bytes - partial
            f.write(np.ascontiguousarray(batch, dtype=np.uint8).tobytes())
            f.flush()
            os.fsync(f.fileno())
            return size // self.row_bytes

    def _rows_on_disk(self) -> int:
        try:
            return self.data_path.stat().st_size // self.row_bytes
        except FileNotFoundError:
            return 0

    def _read_index(self) -> dict[str, list[int]]:
        try:
            raw = json.loads(self.index_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}  # missing or corrupt: rebuild; orphaned rows only cost disk space
        if raw.get("version") != INDEX_VERSION or raw.get("image_size") != self.image_size:
            return {}
        rows = self._rows_on_disk()
        # Entries pointing past the data file (deleted or replaced cache) are stale.
        return {k: v for k, v in raw.get("entries", {}).items() if v[0] < rows}

    def _write_index(self, added: dict[str, list[int]]) -> None:
        with self._locked():
            entries = self._read_index()  # merge: another writer may have added keys since we read
            for key, value in added.items():
                entries.setdefault(key, value)
            payload = {"version": INDEX_VERSION, "image_size": self.image_size, "entries": entries}
            tmp = self.index_path.with_name(f".{self.index_path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(payload, separators=(",", ":")))
            os.replace(tmp, self.index_path)
