"""A persisted gallery: faiss inner-product search over unit embeddings, bound to the encoder that made them.

An index folder holds
- ``index.json``: the current generation, the vector size, and the *binding*: the encoder's
  fingerprint, its model file and the test-time augmentation the vectors were made with;
- ``model-<fingerprint>.safetensors``: a copy of that model, so searches embed queries the same way;
- ``gen-<N>/vectors.faiss`` and ``gen-<N>/meta.jsonl`` (path and optional label per vector, in faiss order);
- ``.pending/``: an unfinished ``index`` run's new vectors (see ``journal.py``).

The faiss index is one of ``kinds.INDEX_TYPES`` (flat unless chosen; recorded in ``index.json``, absent = flat).

Every save writes a complete new generation folder, then swaps ``index.json`` to it with one atomic
rename, then removes the old generation: a process killed at any moment leaves the previous state or the
new one, never vectors from one and metadata from the other. Paths are stored absolute (the path is an
item's id); labels are optional.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

from finegrain.errors import FinegrainError
from finegrain.index import kinds
from finegrain.utils import atomic_write, atomic_write_text

INFO, VECTORS, META = "index.json", "vectors.faiss", "meta.jsonl"
FORMAT, VERSION = "finegrain-index", 2


class GalleryError(FinegrainError):
    """An index folder that cannot be used as asked (the message names it and says why)."""


@dataclass
class IndexBinding:
    """What made the vectors: an index only ever holds vectors of one encoder, used one way."""

    fingerprint: str
    model_file: str  # inside the index folder
    tta: list[str] = field(default_factory=list)
    kind: str = "embedding"
    source: str = ""  # the run or file it was copied from, for people to read

    @classmethod
    def from_model(cls, path: Path, tta: Sequence[str] = (), kind: str = "embedding") -> IndexBinding:
        from finegrain.artifact import read_manifest

        fingerprint = read_manifest(path)["fingerprint"]
        return cls(fingerprint, f"model-{fingerprint[:16]}.safetensors", list(tta), kind, str(Path(path).resolve()))


@dataclass
class Hit:
    path: str
    label: str | None
    similarity: float


def item_id(path: str | Path) -> str:
    return str(Path(path).resolve())


class GalleryIndex:
    def __init__(self, dim: int, index: faiss.Index | None = None, meta: list[dict] | None = None,
                 binding: IndexBinding | None = None, generation: int = 0, kind: str = "flat",
                 params: dict | None = None, read_only: bool = False):
        self.dim = dim
        self.kind = kinds.check_type(kind)
        # Inner product (flat: exact): on unit vectors it is cosine similarity.
        self.index, self.params = (index, dict(params or {})) if index is not None else kinds.create(kind, dim)
        self.read_only = read_only  # memory-mapped: faiss aborts the process on a write, so refuse it here
        self.meta = list(meta or [])
        self.binding = binding
        self.generation = generation
        self._ids = {m["path"] for m in self.meta}

    def __len__(self) -> int:
        return self.index.ntotal

    @property
    def tta(self) -> list[str]:
        return list(self.binding.tta) if self.binding else []

    @property
    def labels(self) -> list[str | None]:
        return [m.get("label") for m in self.meta]

    def contains(self, path: str | Path) -> bool:
        return item_id(path) in self._ids

    def add(self, vectors: np.ndarray, paths: Sequence[str | Path], labels: Sequence[str | None] | None = None,
            resolved: bool = False) -> int:
        """Add vectors for paths not yet indexed; returns how many were added.

        ``resolved``: the paths are item ids already (a journal's), so resolving a million of them is skipped."""
        labels = list(labels) if labels is not None else [None] * len(paths)
        ids = [str(p) for p in paths] if resolved else [item_id(p) for p in paths]
        keep, seen = [], set(self._ids)
        for i, p in enumerate(ids):
            if p not in seen:
                keep.append(i)
                seen.add(p)
        if not keep:
            return 0
        vectors = np.ascontiguousarray(np.asarray(vectors)[keep], dtype=np.float32)
        if vectors.shape[1] != self.dim:
            raise FinegrainError(f"embedding size {vectors.shape[1]} does not match the index's {self.dim}")
        self._check_writable()
        if not self.index.is_trained:
            raise FinegrainError(f"this {self.kind} index is not trained yet: call train() before add()")
        self.index.add(vectors)
        for i in keep:
            self.meta.append({"path": ids[i], "label": labels[i]})
            self._ids.add(ids[i])
        return len(keep)

    def remove(self, paths: Sequence[str | Path]) -> tuple[int, list[str]]:
        """Remove each path (a folder removes everything under it); returns (removed, paths matching nothing)."""
        targets = [item_id(p) for p in paths]
        drop, unmatched = set(), []
        for target in targets:
            hits = [i for i, m in enumerate(self.meta) if m["path"] == target or m["path"].startswith(target + os.sep)]
            drop.update(hits)
            if not hits:
                unmatched.append(target)
        if drop:
            self._check_writable()
            self.index = kinds.remove_rows(self.index, self.kind, np.array(sorted(drop), dtype=np.int64), self.dim)
            self.meta = [m for i, m in enumerate(self.meta) if i not in drop]
            self._ids = {m["path"] for m in self.meta}
        return len(drop), unmatched

    def train(self, sample: np.ndarray, n: int) -> None:
        """Size a new, empty index for ``n`` vectors and train it on ``sample`` (ivf and ivfpq)."""
        if len(self):
            raise FinegrainError("only an empty index can be trained")
        self.index, self.params = kinds.create(self.kind, self.dim, n)
        self.index.train(np.ascontiguousarray(sample, dtype=np.float32))

    def _check_writable(self) -> None:
        if self.read_only:
            raise FinegrainError("this index was loaded memory-mapped (read-only); load it with mmap=False to "
                                 "change it")

    def vectors(self) -> np.ndarray:
        """Every vector, in metadata order.

        The output buffer is passed explicitly: once pytorch-metric-learning is imported, faiss's patched
        ``reconstruct_n`` returns a torch tensor unless it is handed a numpy array to fill.
        """
        out = np.empty((len(self), self.dim), np.float32)
        if len(self):
            self.index.reconstruct_n(0, len(self), out)
        return out

    def search(self, queries: np.ndarray, k: int = 20, nprobe: int | None = None,
               ef_search: int | None = None) -> list[list[Hit]]:
        """Top-``k`` per query; ``nprobe`` (ivf, ivfpq) and ``ef_search`` (hnsw) override the stored defaults."""
        k = min(k, len(self))
        if k == 0:
            return [[] for _ in range(len(queries))]
        params = kinds.search_params(self.kind, k, nprobe, ef_search, self.params)
        # Once pytorch-metric-learning imports faiss.contrib.torch_utils, ``search`` is a wrapper without
        # ``params``; the numpy original it keeps as ``search_numpy`` has it.
        search = getattr(self.index, "search_numpy", self.index.search)
        sims, ids = search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
        return [
            [Hit(self.meta[j]["path"], self.meta[j]["label"], float(s)) for s, j in zip(row_s, row_i) if j >= 0]
            for row_s, row_i in zip(sims, ids)
        ]

    def label_counts(self) -> dict[str, int]:
        return dict(Counter(str(label) for label in self.labels if label is not None).most_common())

    # -- persistence -------------------------------------------------------------------------
    def save(self, folder: Path | str, model_source: Path | None = None) -> None:
        """Write a new generation and switch to it atomically; ``model_source`` is copied in when missing."""
        if self.binding is None:
            raise FinegrainError("an index needs the encoder binding it was built with before it can be saved")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        model = folder / self.binding.model_file
        if not model.exists():
            if model_source is None:
                raise FinegrainError(f"{folder}: the index's model file {model.name} is missing")
            atomic_write(model, lambda tmp: shutil.copyfile(model_source, tmp))
        generation = self.generation + 1
        final = folder / f"gen-{generation:06d}"
        staging = folder / f".gen-{generation:06d}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)  # a stale generation a killed save never switched to
        staging.mkdir()
        faiss.write_index(self.index, str(staging / VECTORS))
        (staging / META).write_text("".join(json.dumps(m) + "\n" for m in self.meta))
        os.replace(staging, final)
        info = {"format": FORMAT, "version": VERSION, "generation": generation, "dim": self.dim, "count": len(self),
                "encoder": asdict(self.binding), "index": {"type": self.kind, **self.params}}
        atomic_write_text(folder / INFO, json.dumps(info, indent=2))  # the switch
        self.generation = generation
        for old in folder.iterdir():  # what no longer belongs to the current state
            stale_gen = old.name.startswith(("gen-", ".gen-")) and old != final
            stale_model = old.name.startswith("model-") and old.name != self.binding.model_file
            if stale_gen:
                shutil.rmtree(old, ignore_errors=True)
            elif stale_model:
                old.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: Path | str, mmap: bool = False) -> GalleryIndex:
        """Load the current generation; ``mmap`` maps the vectors read-only instead of reading them (searching)."""
        folder = Path(folder)
        if not (folder / INFO).exists():
            raise GalleryError(f"{folder}: not a finegrain index (no {INFO}); build one with 'finegrain index'")
        try:
            info = json.loads((folder / INFO).read_text())
        except json.JSONDecodeError:
            raise GalleryError(f"{folder}: {INFO} is not valid JSON") from None
        if info.get("format") != FORMAT:
            raise GalleryError(f"{folder}: an index from finegrain 0.1; convert it once with "
                              f"'finegrain convert {folder}'")
        if info.get("version") != VERSION:
            raise GalleryError(f"{folder}: index format version {info.get('version')!r}; "
                               f"this finegrain reads {VERSION}")
        gen = folder / f"gen-{info['generation']:06d}"
        params = dict(info.get("index") or {"type": "flat"})  # indexes saved before index types were flat
        kind = params.pop("type")
        if kind not in kinds.INDEX_TYPES:
            raise GalleryError(f"{folder}: index type {kind!r} is not one this finegrain reads")
        index = kinds.read(str(gen / VECTORS), kind, mmap)
        meta = [json.loads(line) for line in (gen / META).read_text().splitlines() if line]
        if index.ntotal != len(meta) or index.d != info["dim"]:
            raise GalleryError(f"{folder}: vectors and metadata disagree ({index.ntotal} vs {len(meta)}); rebuild it")
        return cls(info["dim"], index, meta, IndexBinding(**info["encoder"]), info["generation"], kind, params, mmap)

    @staticmethod
    def exists(folder: Path | str) -> bool:
        return (Path(folder) / INFO).exists()

    def model_path(self, folder: Path | str) -> Path:
        return Path(folder) / self.binding.model_file
