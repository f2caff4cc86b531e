"""The unfinished part of an ``index`` run: new vectors appended to disk, so memory stays bounded and a kill loses
at most the images since the last checkpoint.

    IDX/.pending/vectors.f32   raw float32 rows, appended
    IDX/.pending/meta.jsonl    one {"path", "label"} row per vector, appended
    IDX/.pending/journal.json  the checkpoint: how many rows (and meta bytes) are complete, and what made them

A checkpoint flushes both files to disk, then replaces ``journal.json`` in one rename; rows written after it
are cut off when the run resumes. The searchable index (the generations) changes only when the run finishes,
so rewriting it costs once per run rather than once per checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from finegrain.index.gallery import GalleryError, item_id
from finegrain.utils import atomic_write_text

PENDING, STATE, VECTORS, META = ".pending", "journal.json", "vectors.f32", "meta.jsonl"


class Journal:
    def __init__(self, folder: Path, settings: dict, dim: int, count: int = 0, meta_bytes: int = 0):
        self.folder, self.settings, self.dim = folder, settings, dim
        self.count, self.meta_bytes = count, meta_bytes
        self.ids = {m["path"] for m in self.meta()} if count else set()

    @classmethod
    def open(cls, index_folder: Path, settings: dict, dim: int, generation: int, discard: bool = False) -> Journal:
        """Resume the journal of an interrupted run with these ``settings``, or start an empty one.

        A journal whose run already produced generation ``finished`` (killed after its switch, before its
        clean-up) is spent and starts over; one made with other settings is an error unless ``discard``.
        """
        folder = index_folder / PENDING
        state = json.loads((folder / STATE).read_text()) if (folder / STATE).exists() else None
        spent = state is not None and state.get("finished") is not None and generation >= state["finished"]
        if state is not None and not spent and not discard and (state["settings"] != settings or state["dim"] != dim):
            raise GalleryError(f"{index_folder} holds an unfinished run made with other settings "
                               f"({_describe(state['settings'])}); rerun it that way to finish it, or pass "
                               "--reembed to discard it")
        if state is None or spent or state["settings"] != settings or state["dim"] != dim:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            state = {"settings": settings, "dim": dim, "count": 0, "meta_bytes": 0}
            atomic_write_text(folder / STATE, json.dumps(state))
        # Cut off whatever was written after the last checkpoint (a partial row, a partial line).
        for name, size in ((VECTORS, state["count"] * dim * 4), (META, state["meta_bytes"])):
            if (folder / name).exists():
                os.truncate(folder / name, size)
        return cls(folder, settings, dim, state["count"], state["meta_bytes"])

    def __len__(self) -> int:
        return self.count

    def contains(self, path: str | Path) -> bool:
        return item_id(path) in self.ids

    def append(self, vectors: np.ndarray, paths: Sequence[str | Path], labels: Sequence[str | None]) -> int:
        """Append the rows whose path is new to the journal; returns how many."""
        rows = []
        for i, path in enumerate(paths):
            key = item_id(path)
            if key not in self.ids:
                self.ids.add(key)
                rows.append(i)
        if rows:
            lines = "".join(json.dumps({"path": item_id(paths[i]), "label": labels[i]}) + "\n" for i in rows)
            data = lines.encode()
            with open(self.folder / VECTORS, "ab") as f:
                f.write(np.ascontiguousarray(np.asarray(vectors)[rows], dtype=np.float32).tobytes())
            with open(self.folder / META, "ab") as f:
                f.write(data)
            self.count, self.meta_bytes = self.count + len(rows), self.meta_bytes + len(data)
        return len(rows)

    def checkpoint(self, finished: int | None = None) -> None:
        """Make every appended row durable; ``finished`` records the generation the finishing save will write."""
        for name in (VECTORS, META):
            if (self.folder / name).exists():
                with open(self.folder / name, "rb") as f:
                    os.fsync(f.fileno())  # the rows reach the disk before the state that counts them
        state = {"settings": self.settings, "dim": self.dim, "count": self.count, "meta_bytes": self.meta_bytes,
                 "finished": finished}
        atomic_write_text(self.folder / STATE, json.dumps(state))

    def vectors(self) -> np.ndarray:
        """The rows as a read-only memory map (nothing is loaded until it is read)."""
        if not self.count:
            return np.empty((0, self.dim), np.float32)
        return np.memmap(self.folder / VECTORS, np.float32, "r", shape=(self.count, self.dim))

    def meta(self) -> list[dict]:
        with open(self.folder / META, "rb") as f:
            data = f.read(self.meta_bytes)
        return [json.loads(line) for line in data.decode().splitlines() if line]

    def chunks(self, size: int = 65_536) -> Iterator[np.ndarray]:
        vectors = self.vectors()
        for start in range(0, len(vectors), size):
            yield np.ascontiguousarray(vectors[start:start + size])

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _describe(settings: dict) -> str:
    mode = "rebuild" if settings.get("rebuild") else "extend"
    return f"model {settings.get('fingerprint', '')[:12]}, --tta {','.join(settings.get('tta', [])) or 'none'}, {mode}"
