"""Turn records into training-ready data: every image decoded and checked once, bad input reported once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from finegrain.data.cache import DecodeCache
from finegrain.data.cached_images import CachedImages
from finegrain.data.records import Record
from finegrain.errors import ConfigError, DataError, Problem

TASKS = ("embed", "score")


@dataclass
class PreparedData:
    """`records[i]` is `images[i]`, with class index `labels[i]` (embed) or `scores[i]` (score)."""

    records: list[Record]
    images: CachedImages
    labels: np.ndarray | None
    classes: list[str]
    scores: np.ndarray | None
    notes: list[str] = field(default_factory=list)

    def subset(self, positions: Sequence[int], relabel: bool = True) -> PreparedData:
        """The items at `positions` (e.g. one split). relabel=True renumbers the classes present
        to 0..C-1, as classifier-style losses need; False keeps the full class list."""
        positions = list(positions)
        labels, classes = self.labels, self.classes
        if labels is not None:
            labels = labels[positions]
            if relabel:
                present = np.unique(labels)
                classes = [self.classes[k] for k in present]
                labels = np.searchsorted(present, labels).astype(np.int64)
        return PreparedData(
            records=[self.records[p] for p in positions],
            images=self.images.subset(positions),
            labels=labels,
            classes=list(classes),
            scores=self.scores[positions] if self.scores is not None else None,
            notes=list(self.notes),
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "es" if noun.endswith("s") else "s")


def _name_list(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" ... and {len(names) - limit} more" if len(names) > limit else "")


def _target_problems(records: Sequence[Record], task: str) -> list[Problem | None]:
    """Per record: why its label or score is unusable for the task, or None."""
    if task == "embed":
        return [None if r.label else Problem(r.path, "no label") for r in records]
    return [
        None if r.score is not None and np.isfinite(r.score) else Problem(r.path, "no score (or not finite)")
        for r in records
    ]


def prepare(
    records: Sequence[Record],
    image_size: int,
    cache_dir: Path | None = None,
    task: str = "embed",
    min_per_class: int = 2,
    skip_bad: bool = False,
    progress: bool = True,
    faces=None,
) -> PreparedData:
    """Decode (through the cache) and check everything; raise one DataError listing every bad file.

    skip_bad=True drops bad files instead and says so in `notes`. For task "embed", classes with
    fewer than `min_per_class` images are dropped with a note (they cannot form a positive pair).
    ``faces`` (a ``MainFaceCropper``): each image becomes a crop of its main face; those without one are kept
    whole, with a note.
    """
    if task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    records = list(records)
    if not records:
        raise DataError("no input images")
    targets = _target_problems(records, task)
    if all(targets):  # one sentence beats one identical line per file
        what = "labels" if task == "embed" else "scores"
        raise DataError(f"task '{task}' needs {what}, but none of the {len(records)} inputs has one")

    images = DecodeCache(cache_dir, image_size, crop=faces).load([r.path for r in records], progress=progress)
    bad: dict[int, Problem] = {i: p for i, p in enumerate(targets) if p is not None}
    loaded = set(images.indices.tolist())
    image_problems = iter(images.problems)
    for i in range(len(records)):
        if i not in loaded:  # problems come in input order, one per file that failed
            problem = next(image_problems)
            # One line per file, with every reason, so a single fix round is enough.
            bad[i] = Problem(problem.path, f"{bad[i].reason}; {problem.reason}") if i in bad else problem
    notes: list[str] = []
    if images.without_face:
        notes.append(f"no face found in {_count(len(images.without_face), 'image')} of {len(records)}, used whole: "
                     + _name_list([Path(p).name for p in images.without_face]))
    if bad:
        problems = [bad[i] for i in sorted(bad)]
        if not skip_bad:
            raise DataError(
                f"{len(problems)} of {len(records)} input images cannot be used "
                "(fix or remove them, or pass --skip-bad to leave them out)",
                problems,
            )
        notes.append(
            f"skipped {_count(len(problems), 'bad image')}: "
            + _name_list([f"{Path(p.path).name} ({p.reason})" for p in problems])
        )

    keep = [pos for pos, i in enumerate(images.indices.tolist()) if i not in bad]
    if task == "score":
        kept = [records[i] for i in images.indices[keep]]
        if not kept:
            raise DataError("no usable images left")
        scores = np.asarray([r.score for r in kept], dtype=np.float32)
        return PreparedData(kept, images.subset(keep), None, [], scores, notes)

    counts = Counter(records[images.indices[pos]].label for pos in keep)
    small = sorted(c for c, n in counts.items() if n < min_per_class)
    if small:
        dropped = _count(len(small), "class")
        notes.append(f"dropped {dropped} with fewer than {min_per_class} images: {_name_list(small)}")
        small_set = set(small)
        keep = [pos for pos in keep if records[images.indices[pos]].label not in small_set]
    classes = sorted(counts.keys() - set(small))
    if len(classes) < 2:
        raise DataError(
            f"need at least 2 classes with {min_per_class} or more images each, found {len(classes)}"
        )
    kept = [records[i] for i in images.indices[keep]]
    class_index = {c: k for k, c in enumerate(classes)}
    labels = np.asarray([class_index[r.label] for r in kept], dtype=np.int64)
    return PreparedData(kept, images.subset(keep), labels, classes, None, notes)
