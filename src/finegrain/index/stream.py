"""Streaming an index build: vectors go to the on-disk journal as they come, then one pass builds the index.

Memory stays bounded by a batch while embedding, and by the index itself (plus one chunk and, for ivf and
ivfpq, one training sample) while finishing; a killed run resumes from the journal's last checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from finegrain.index import kinds
from finegrain.index.gallery import GalleryIndex
from finegrain.index.journal import Journal

Part = tuple[np.ndarray, Sequence[str | Path], Sequence[str | None]]  # vectors, paths, labels


def open_journal(out: Path, index: GalleryIndex, rebuild: bool, discard: bool = False) -> Journal:
    """The journal for a run adding to ``index`` (``rebuild``: it replaces what ``out`` holds)."""
    settings = {"fingerprint": index.binding.fingerprint, "tta": index.tta, "rebuild": rebuild}
    # ``index`` is the generation on disk (or a fresh index carrying its number): it tells whether a finished
    # run's journal was already applied (see Journal.open).
    return Journal.open(Path(out), settings, index.dim, index.generation, discard)


def append_parts(journal: Journal, parts: Iterable[Part], save_every: int) -> int:
    """Append every part to the journal, checkpointing each ``save_every`` new rows; returns rows added."""
    added = since = 0
    for vectors, paths, labels in parts:
        n = journal.append(vectors, paths, labels)
        added, since = added + n, since + n
        if since >= save_every:
            journal.checkpoint()
            since = 0
    journal.checkpoint()
    return added


def training_sample(journal: Journal, size: int, seed: int = 0) -> np.ndarray:
    """``size`` rows drawn at random (a folder's order groups similar images), read in file order."""
    rows = np.sort(np.random.default_rng(seed).choice(len(journal), size=min(size, len(journal)), replace=False))
    return np.ascontiguousarray(journal.vectors()[rows])


def finish(out: Path, index: GalleryIndex, journal: Journal, model_source: Path | None) -> GalleryIndex:
    """Train ``index`` if it must be, add the journal's rows in chunks, save a new generation, drop the journal."""
    total = len(index) + len(journal)
    if not index.index.is_trained:
        kinds.check_trainable(index.kind, total, str(out))
        index.train(training_sample(journal, kinds.TRAIN_PER_LIST * kinds.nlist_for(total)), total)
    meta, start = journal.meta(), 0
    for chunk in journal.chunks():
        rows = meta[start:start + len(chunk)]
        index.add(chunk, [m["path"] for m in rows], [m["label"] for m in rows], resolved=True)
        start += len(chunk)
    # Record the generation this save writes first: killed after the switch, a rerun knows the journal is spent.
    journal.checkpoint(finished=index.generation + 1)
    index.save(out, model_source)
    journal.remove()
    return index
