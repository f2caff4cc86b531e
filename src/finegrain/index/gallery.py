"""A persisted gallery index: faiss inner-product search over unit embeddings, plus metadata.

An index folder is self-contained: ``vectors.faiss``, ``meta.jsonl`` (path and label per vector,
in faiss order), ``index.json`` (dimension, count) and ``model.pt`` (a copy of the model that
made the vectors, so ``search`` embeds queries the same way without being told the run).
Adding to an existing folder skips paths already indexed; every file is replaced atomically.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from finegrain.errors import FinegrainError
from finegrain.utils import atomic_write, atomic_write_text

VECTORS, META, INFO, MODEL = "vectors.faiss", "meta.jsonl", "index.json", "model.pt"


@dataclass
class Hit:
    path: str
    label: str | None
    similarity: float


class GalleryIndex:
    def __init__(self, dim: int, index: faiss.Index | None = None, meta: list[dict] | None = None,
                 tta: list[str] | None = None):
        self.dim = dim
        self.tta = list(tta or [])  # how the gallery was embedded: queries must be embedded the same way
        # Exact inner product: on unit vectors it is cosine similarity. Flat search over 100k×128
        # floats takes milliseconds per query, so no approximate structure is needed here.
        self.index = index if index is not None else faiss.IndexFlatIP(dim)
        self.meta = list(meta or [])
        self._paths = {m["path"] for m in self.meta}

    def __len__(self) -> int:
        return self.index.ntotal

    def contains(self, path: str | Path) -> bool:
        return str(path) in self._paths

    def add(self, vectors: np.ndarray, paths: Sequence[str | Path], labels: Sequence[str | None] | None = None) -> int:
        """Add vectors for paths not yet indexed; returns how many were added."""
        labels = list(labels) if labels is not None else [None] * len(paths)
        keep = [i for i, p in enumerate(paths) if str(p) not in self._paths]
        if not keep:
            return 0
        vectors = np.ascontiguousarray(vectors[keep], dtype=np.float32)
        if vectors.shape[1] != self.dim:
            raise FinegrainError(f"embedding size {vectors.shape[1]} does not match the index's {self.dim}")
        self.index.add(vectors)
        for i in keep:
            self.meta.append({"path": str(paths[i]), "label": labels[i]})
            self._paths.add(str(paths[i]))
        return len(keep)

    def search(self, queries: np.ndarray, k: int = 20) -> list[list[Hit]]:
        k = min(k, len(self))
        if k == 0:
            return [[] for _ in range(len(queries))]
        sims, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return [
            [Hit(self.meta[j]["path"], self.meta[j]["label"], float(s)) for s, j in zip(row_s, row_i) if j >= 0]
            for row_s, row_i in zip(sims, ids)
        ]

    # -- persistence -------------------------------------------------------------------------
    def save(self, folder: Path, model_file: Path | None = None) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / VECTORS, lambda p: faiss.write_index(self.index, str(p)))
        atomic_write_text(folder / META, "".join(json.dumps(m) + "\n" for m in self.meta))
        atomic_write_text(folder / INFO, json.dumps({"dim": self.dim, "count": len(self), "tta": self.tta},
                                                             indent=2))
        if model_file is not None and Path(model_file).resolve() != (folder / MODEL).resolve():
            atomic_write(folder / MODEL, lambda p: shutil.copyfile(model_file, p))

    @classmethod
    def load(cls, folder: Path | str) -> GalleryIndex:
        folder = Path(folder)
        if not (folder / INFO).exists():
            raise FinegrainError(f"{folder}: not a finegrain index (no {INFO}); build one with 'finegrain index'")
        info = json.loads((folder / INFO).read_text())
        index = faiss.read_index(str(folder / VECTORS))
        meta = [json.loads(line) for line in (folder / META).read_text().splitlines() if line]
        if index.ntotal != len(meta) or index.d != info["dim"]:
            raise FinegrainError(f"{folder}: vectors and metadata disagree ({index.ntotal} vs {len(meta)}); rebuild it")
        return cls(info["dim"], index, meta, tta=info.get("tta"))

    @staticmethod
    def model_path(folder: Path | str) -> Path:
        return Path(folder) / MODEL


def build_index(
    embedded: Iterable[tuple[list[Path], np.ndarray, list[str | None]]],
    folder: Path,
    dim: int,
    model_file: Path,
    save_every: int = 20_000,
    tta: list[str] | None = None,
) -> tuple[GalleryIndex, int]:
    """Add streamed (paths, vectors, labels) batches to the index in ``folder`` (created or extended).

    Saves every ``save_every`` new vectors, so a killed run over a huge gallery keeps its progress.
    """
    folder = Path(folder)
    index = GalleryIndex.load(folder) if (folder / INFO).exists() else GalleryIndex(dim, tta=tta)
    if index.tta != list(tta or []):
        raise FinegrainError(f"{folder}: the index was embedded with --tta {','.join(index.tta) or 'none'}; "
                             "extend it with the same --tta")
    if index.dim != dim:
        raise FinegrainError(f"{folder}: the index holds {index.dim}-d vectors, this model makes {dim}-d ones")
    added = since_save = 0
    for paths, vectors, labels in embedded:
        n = index.add(vectors, paths, labels)
        added, since_save = added + n, since_save + n
        if since_save >= save_every:
            index.save(folder, model_file)
            since_save = 0
    index.save(folder, model_file)
    return index, added
