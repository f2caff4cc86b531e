"""Collections on disk: each a ``GalleryIndex`` folder bound to the service's model, plus the photos added.

    DATA/collections/<name>/index.json, gen-N/, model-*.safetensors   (GalleryIndex: atomic generations)
    DATA/collections/<name>/items/<id>.<ext>                          (what was uploaded, for thumbnails)

An add writes its photos first, then switches the index to a generation that lists them: a process killed
before the switch leaves the collection as it was (its stray photos are swept at the next start), after it
as it is with the whole request. A deleted collection is first renamed aside, so it is gone or intact.
"""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finegrain.errors import ConfigError
from finegrain.index.gallery import GalleryIndex, IndexBinding
from finegrain.serve.uploads import ApiError
from finegrain.utils import atomic_write

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
ITEM_ID = re.compile(r"[0-9a-f]{32}")
TRASH = ".deleted-"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ApiError(422, f"collection name {name!r} is not allowed: use 1 to 64 letters, digits, '-' or '_', "
                            "starting with a letter or digit")
    return name


@dataclass(frozen=True)
class Upload:
    """One photo to add: its bytes as stored (the upload, or a face crop) and their file extension."""

    data: bytes
    extension: str


class Collection:
    def __init__(self, name: str, folder: Path, gallery: GalleryIndex):
        self.name, self.folder, self.gallery = name, folder, gallery
        self.lock = threading.RLock()  # faiss is not safe to search while another thread adds

    @property
    def items_dir(self) -> Path:
        return self.folder / "items"

    def item_id(self, meta: dict) -> str:
        return Path(meta["path"]).stem

    def items(self) -> list[dict]:
        with self.lock:
            return [{"id": self.item_id(m), "label": m.get("label")} for m in self.gallery.meta]

    def has_labels(self) -> bool:
        with self.lock:
            return any(m.get("label") is not None for m in self.gallery.meta)

    def image_path(self, item_id: str) -> Path:
        with self.lock:
            for m in self.gallery.meta:
                if self.item_id(m) == item_id:
                    return self.items_dir / Path(m["path"]).name  # where it is now, wherever DATA was before
        raise ApiError(404, f"collection {self.name!r} has no item {item_id!r}")

    def search(self, queries: np.ndarray, k: int) -> list[list[dict]]:
        with self.lock:
            hits = self.gallery.search(queries, k)
        return [[{"id": Path(h.path).stem, "label": h.label, "similarity": h.similarity} for h in row] for row in hits]

    def vectors_of(self, label: str) -> np.ndarray:
        """The stored embeddings of every item labelled ``label`` (K×E, K may be 0)."""
        with self.lock:
            rows = [i for i, m in enumerate(self.gallery.meta) if m.get("label") == label]
            out = np.empty((len(rows), self.gallery.dim), np.float32)
            for j, i in enumerate(rows):
                self.gallery.index.reconstruct(i, out[j])  # fills the row (see GalleryIndex.vectors)
            return out

    def sweep(self) -> int:
        """Remove photos no generation lists (left by an add that was killed before its switch)."""
        listed = {Path(m["path"]).name for m in self.gallery.meta}
        stray = [p for p in self.items_dir.glob("*") if p.name not in listed] if self.items_dir.exists() else []
        for path in stray:
            path.unlink(missing_ok=True)
        return len(stray)


class CollectionStore:
    def __init__(self, root: Path | str, model_file: Path, binding: IndexBinding, dim: int,
                 reembed: Callable[[list[np.ndarray]], np.ndarray] | None = None):
        """``binding`` and ``dim``: the service's model; ``reembed`` (images → vectors) re-embeds collections made
        with another model from their stored photos, instead of refusing to start."""
        self.root = Path(root) / "collections"
        self.root.mkdir(parents=True, exist_ok=True)
        self.model_file, self.binding, self.dim = model_file, binding, dim
        self._lock = threading.Lock()
        self._collections: dict[str, Collection] = {}
        for trash in self.root.glob(TRASH + "*"):
            shutil.rmtree(trash, ignore_errors=True)
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            self._collections[folder.name] = self._open(folder, reembed)

    def _open(self, folder: Path, reembed: Callable | None) -> Collection:
        if not GalleryIndex.exists(folder):  # created but killed before its first save
            return self._new(folder.name)
        gallery = GalleryIndex.load(folder)
        collection = Collection(folder.name, folder, gallery)
        collection.sweep()
        if gallery.binding.fingerprint != self.binding.fingerprint or gallery.tta != self.binding.tta:
            if reembed is None:
                raise ConfigError(
                    f"collection {folder.name!r} ({folder}) was embedded with another model or TTA "
                    f"({gallery.binding.source}, fingerprint {gallery.binding.fingerprint[:12]}); start the service "
                    "with that model, or pass --reembed to re-embed its stored photos with this one")
            self._reembed(collection, reembed)
        return collection

    def _reembed(self, collection: Collection, embed: Callable[[list[np.ndarray]], np.ndarray]) -> None:
        from finegrain.data.images import decode_image

        meta = collection.gallery.meta
        paths = [collection.items_dir / Path(m["path"]).name for m in meta]
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise ConfigError(f"collection {collection.name!r}: --reembed needs its stored photos, and "
                              f"{len(missing)} are missing (first: {missing[0]})")
        gallery = GalleryIndex(self.dim, binding=self.binding, generation=collection.gallery.generation)
        if paths:
            gallery.add(embed([decode_image(p) for p in paths]), paths, [m.get("label") for m in meta])
        gallery.save(collection.folder, model_source=self.model_file)
        collection.gallery = gallery

    # -- collections ----------------------------------------------------------------------------
    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    def get(self, name: str) -> Collection:
        with self._lock:
            found = self._collections.get(name)
        if found is None:
            raise ApiError(404, f"unknown collection {name!r}", collection=name)
        return found

    def _new(self, name: str) -> Collection:
        folder = self.root / name
        gallery = GalleryIndex(self.dim, binding=self.binding)
        gallery.save(folder, model_source=self.model_file)
        (folder / "items").mkdir(exist_ok=True)
        return Collection(name, folder, gallery)

    def create(self, name: str) -> Collection:
        check_name(name)
        with self._lock:
            if name in self._collections:
                raise ApiError(409, f"collection {name!r} already exists", collection=name)
            collection = self._collections[name] = self._new(name)
        return collection

    def delete(self, name: str) -> None:
        collection = self.get(name)
        with self._lock, collection.lock:
            trash = self.root / f"{TRASH}{name}-{uuid.uuid4().hex}"
            collection.folder.rename(trash)  # one rename: the collection is gone or intact
            del self._collections[name]
        shutil.rmtree(trash, ignore_errors=True)

    # -- items ----------------------------------------------------------------------------------
    def add(self, name: str, uploads: Sequence[Upload], vectors: np.ndarray, label: str | None) -> list[str]:
        collection = self.get(name)
        ids = [uuid.uuid4().hex for _ in uploads]
        with collection.lock:
            collection.items_dir.mkdir(exist_ok=True)
            paths = [collection.items_dir / f"{item}{upload.extension}" for item, upload in zip(ids, uploads)]
            for path, upload in zip(paths, uploads):
                atomic_write(path, lambda tmp, data=upload.data: tmp.write_bytes(data))
            self._commit(collection, lambda gallery: gallery.add(vectors, paths, [label] * len(paths)))
        return ids

    def remove(self, name: str, item_id: str) -> None:
        collection = self.get(name)
        if not ITEM_ID.fullmatch(item_id):
            raise ApiError(404, f"collection {name!r} has no item {item_id!r}")
        with collection.lock:
            path = collection.image_path(item_id)
            stored = next(m["path"] for m in collection.gallery.meta if Path(m["path"]).stem == item_id)
            self._commit(collection, lambda gallery: gallery.remove([stored]))
            path.unlink(missing_ok=True)

    def _commit(self, collection: Collection, change: Callable[[GalleryIndex], object]) -> None:
        """Apply ``change`` and save a new generation; on any failure the collection is reread from disk."""
        try:
            change(collection.gallery)
            collection.gallery.save(collection.folder, model_source=self.model_file)
        except BaseException:
            collection.gallery = GalleryIndex.load(collection.folder)
            raise
