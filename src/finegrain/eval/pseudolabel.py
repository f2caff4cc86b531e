"""Pseudo-labelling: give unlabelled images the label of their nearest gallery identity, when confident.

An image is accepted when its best identity's cosine similarity reaches ``threshold`` and, with a
``margin``, beats the best *different* identity by at least that much, so images that sit between
two identities are left out. The accepted images are written as a CSV manifest
(``path,label,confidence``) that ``finegrain train`` reads like any other (it ignores the extra column).

The gallery is an index folder made by ``finegrain index`` (its own model embeds the unlabelled
images), or a model run plus labelled data that is embedded here.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finegrain.data.sources import _walk_images, is_image_file, read_source
from finegrain.errors import ConfigError, DataError, FinegrainError, Problem
from finegrain.index.gallery import INFO, GalleryIndex
from finegrain.infer.embedder import Embedder, resolve_model_path
from finegrain.utils import atomic_write_text, progress_bar

MANIFEST_COLUMNS = ("path", "label", "confidence")


@dataclass
class Assignment:
    """Per unlabelled image: the accepted label (None when rejected) and the evidence for it.

    ``nearest`` is the best identity whether accepted or not; ``confidences`` its similarity;
    ``runner_up`` the best different identity's similarity (-inf when the gallery has one identity).
    """

    labels: list[str | None]
    confidences: np.ndarray
    runner_up: np.ndarray
    nearest: list[str]

    @property
    def accepted(self) -> np.ndarray:
        return np.array([label is not None for label in self.labels], dtype=bool)


@dataclass(frozen=True)
class _Identities:
    """Gallery columns grouped by label: ``order`` puts each identity's columns together from ``starts``."""

    names: list[str]
    order: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def from_labels(cls, labels: Sequence[str | None]) -> _Identities:
        if len(labels) == 0:
            raise DataError("the gallery is empty: there is no identity to assign")
        missing = sum(label is None for label in labels)
        if missing:
            raise DataError(f"{missing} of the {len(labels)} gallery items have no label")
        names, inverse, sizes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True,
                                          return_counts=True)
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return cls([str(n) for n in names], order, starts, sizes)


def check_threshold(threshold: float, margin: float = 0.0, k: int = 1) -> None:
    """Raise a ConfigError naming the flag when a setting is out of range."""
    if not np.isfinite(threshold) or not -1.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold is a cosine similarity, so it must lie in [-1, 1]; got {threshold}")
    if not np.isfinite(margin) or margin < 0:
        raise ConfigError(f"--margin must be a non-negative similarity difference; got {margin}")
    if int(k) != k or k < 1:
        raise ConfigError(f"k must be a positive integer; got {k}")


def _identity_scores(similarity: np.ndarray, ids: _Identities, k: int) -> np.ndarray:
    """U×L: each identity's score, the mean of its ``k`` highest similarities (all of them if it has fewer)."""
    grouped = similarity[:, ids.order]
    if k == 1:
        return np.maximum.reduceat(grouped, ids.starts, axis=1)
    scores = np.empty((len(similarity), len(ids.names)), dtype=np.float64)
    for j, (start, size) in enumerate(zip(ids.starts, ids.sizes)):
        block = grouped[:, start : start + size]
        take = min(k, size)
        top = block if take == size else -np.partition(-block, take - 1, axis=1)[:, :take]
        scores[:, j] = top.mean(axis=1)
    return scores


def _assign(similarity: np.ndarray, ids: _Identities, threshold: float, margin: float, k: int) -> Assignment:
    similarity = np.asarray(similarity, dtype=np.float64)
    if similarity.ndim != 2 or similarity.shape[1] != len(ids.order):
        raise ValueError(f"similarity must be U×{len(ids.order)} (one column per gallery item), got {similarity.shape}")
    if len(similarity) == 0:
        empty = np.zeros(0, dtype=np.float64)
        return Assignment([], empty, empty.copy(), [])
    scores = _identity_scores(similarity, ids, k)
    rows = np.arange(len(scores))
    best = np.argmax(scores, axis=1)
    confidence = scores[rows, best]
    if scores.shape[1] > 1:
        others = scores.copy()
        others[rows, best] = -np.inf
        runner_up = others.max(axis=1)
    else:
        runner_up = np.full(len(scores), -np.inf)
    ok = (confidence >= threshold) & (confidence - runner_up >= margin)
    nearest = [ids.names[b] for b in best]
    labels = [name if keep else None for name, keep in zip(nearest, ok)]
    return Assignment(labels, confidence, runner_up, nearest)


def assign_labels(
    similarity: np.ndarray,
    gallery_labels: Sequence[str | None],
    threshold: float,
    margin: float = 0.0,
    k: int = 1,
) -> Assignment:
    """Nearest identity per row of a U×G cosine ``similarity`` matrix, accepted only when confident.

    An identity's score is its highest similarity (k=1), or the mean of its k highest (identities
    with fewer than k gallery images use all of theirs), which is less swayed by one odd gallery
    image. A row is accepted when its best score ≥ ``threshold`` and best − runner-up ≥ ``margin``,
    where the runner-up is the best *different* identity. Ties go to the label that sorts first.
    """
    check_threshold(threshold, margin, k)
    return _assign(similarity, _Identities.from_labels(list(gallery_labels)), threshold, margin, int(k))


# -- inputs ---------------------------------------------------------------------------------------
def read_unlabelled(source: Path | str, root: Path | str | None = None) -> list[Path]:
    """Images to label: a folder (searched recursively), one image, a CSV with a ``path`` column,
    or a list file with one path per line (blank lines and ``#`` comments skipped).

    Relative paths in a file resolve against ``root``, else the file's folder.
    """
    source = Path(source)
    if not source.exists():
        raise DataError(f"unlabelled images not found: {source}")
    if source.is_dir():
        paths = _walk_images(source)
        if not paths:
            raise DataError(f"no images found in {source} (searched its sub-folders too)")
        return paths
    if is_image_file(source):
        return [source]
    base = Path(root) if root is not None else source.parent
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{source}: cannot read it as a text list of image paths ({e})") from None
    if source.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        reader.fieldnames = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "path" not in reader.fieldnames:
            raise DataError(f"{source}: no 'path' column (columns: {', '.join(reader.fieldnames) or 'none'})")
        raw = [(row.get("path") or "").strip() for row in reader]
    else:
        raw = [line.strip() for line in text.splitlines()]
    raw = [r for r in raw if r and not r.startswith("#")]
    if not raw:
        raise DataError(f"{source}: lists no images")
    return [p if p.is_absolute() else base / p for p in map(Path, raw)]


def _gallery_from_index(folder: Path) -> tuple[Path, np.ndarray, list[str], dict]:
    index = GalleryIndex.load(folder)
    model_file = GalleryIndex.model_path(folder)
    if not model_file.exists():
        raise FinegrainError(f"{folder}: the index has no {model_file.name}; rebuild it with 'finegrain index'")
    keep = [i for i, m in enumerate(index.meta) if m.get("label") is not None]
    if not keep:
        raise DataError(f"{folder}: none of the index's {len(index)} images has a label, so there is nothing to "
                        "assign; index labelled data (class folders, or a manifest or list with labels)")
    vectors = index.index.reconstruct_n(0, len(index))[keep]
    labels = [str(index.meta[i]["label"]) for i in keep]
    return model_file, np.asarray(vectors, dtype=np.float32), labels, {"gallery_unlabelled": len(index) - len(keep)}


def _gallery_from_data(embedder: Embedder, gallery: Path | str, root: Path | str | None,
                       progress: bool) -> tuple[np.ndarray, list[str], dict]:
    # kind="label": integer class ids in a list file are labels here, never scores.
    records = read_source(gallery, root, kind="label")
    labelled = [r for r in records if r.label is not None]
    if not labelled:
        raise DataError(f"{gallery}: none of its {len(records)} images has a label (a scores file is no gallery)")
    labels = {r.path: r.label for r in labelled}
    vectors, names, problems = [], [], []
    bar = progress_bar(total=len(labelled), enabled=progress, desc="embedding gallery", unit="img")
    for paths, emb, bad in embedder.embed_paths([r.path for r in labelled]):
        vectors.append(emb)
        names += [str(labels[p]) for p in paths]
        problems += bad
        bar.update(len(paths) + len(bad))
    bar.close()
    if not names:
        raise DataError(f"{gallery}: none of its images could be read", problems)
    return np.concatenate(vectors), names, {"gallery_unlabelled": len(records) - len(labelled),
                                            "gallery_skipped_bad": [str(p) for p in problems]}


def _manifest(rows: list[tuple[Path, str, float]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows((str(Path(p).resolve()), label, f"{c:.6f}") for p, label, c in rows)
    return buffer.getvalue()


# -- entry point ----------------------------------------------------------------------------------
def pseudolabel(
    run_or_index: Path | str,
    unlabelled: Path | str,
    threshold: float,
    out: Path | str,
    gallery: Path | str | None = None,
    root: Path | str | None = None,
    margin: float = 0.0,
    *,
    k: int = 1,
    batch_size: int = 256,
    progress: bool = True,
) -> dict:
    """Label the confident unlabelled images and write them to the manifest ``out``; returns a summary.

    ``run_or_index`` is an index folder (its labelled gallery and model are inside it) or a model
    run / ``.pt`` file, which then needs ``gallery`` (labelled folder, CSV manifest or list).
    ``root`` resolves relative paths in the gallery and unlabelled list files. Paths in ``out`` are
    absolute. Unreadable images are skipped and listed under ``skipped_bad``.
    """
    check_threshold(threshold, margin, k)
    out = Path(out)
    if out.suffix.lower() != ".csv" or out.is_dir():
        raise ConfigError(f"--out must be a .csv file (that is how 'finegrain train' knows a manifest); got {out}")
    source = Path(run_or_index)
    is_index = source.is_dir() and (source / INFO).exists()
    if is_index and gallery is not None:
        raise ConfigError(f"{source} is an index, which holds its own labelled gallery; "
                          "--gallery is only for a model run")
    if not is_index and gallery is None:
        model = resolve_model_path(source)  # a clear error when it is neither an index nor a model
        raise ConfigError(f"{model} is a model, so --gallery (labelled images to compare against) is required; "
                          "or pass an index folder made by 'finegrain index'")
    targets = read_unlabelled(unlabelled, root)

    info: dict = {}
    if is_index:
        model_file, vectors, labels, info = _gallery_from_index(source)
        embedder = Embedder.load(model_file, batch_size=batch_size)
    else:
        embedder = Embedder.load(source, batch_size=batch_size)
        vectors, labels, info = _gallery_from_data(embedder, gallery, root, progress)
    ids = _Identities.from_labels(labels)

    rows: list[tuple[Path, str, float]] = []
    problems: list[Problem] = []
    below = ambiguous = 0
    bar = progress_bar(total=len(targets), enabled=progress, desc="pseudo-labelling", unit="img")
    for paths, emb, bad in embedder.embed_paths(targets):
        problems += bad
        bar.update(len(paths) + len(bad))
        if not paths:
            continue
        if emb.shape[1] != vectors.shape[1]:
            raise FinegrainError(f"the model makes {emb.shape[1]}-d embeddings but the gallery holds "
                                 f"{vectors.shape[1]}-d ones; was the index built with another model?")
        found = _assign(emb @ vectors.T, ids, threshold, margin, int(k))
        for path, label, conf in zip(paths, found.labels, found.confidences):
            if label is not None:
                rows.append((path, label, float(conf)))
            elif conf < threshold:
                below += 1
            else:
                ambiguous += 1
    bar.close()

    atomic_write_text(out, _manifest(rows))
    counts = Counter(label for _, label, _ in rows)
    return {
        "manifest": str(out),
        "threshold": threshold,
        "margin": margin,
        "k": int(k),
        "gallery": {"images": len(labels), "identities": len(ids.names), **info},
        "unlabelled": len(targets),
        "accepted": len(rows),
        "rejected": below + ambiguous,
        "rejected_below_threshold": below,
        "rejected_ambiguous": ambiguous,
        "labels": dict(sorted(counts.items())),
        "skipped_bad": [str(p) for p in problems],
    }
