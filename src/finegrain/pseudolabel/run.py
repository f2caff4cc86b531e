"""Pseudo-labelling: give unlabelled images the label of their nearest gallery identity, when confident.

The gallery is an index folder made by ``finegrain index`` (its own model, TTA and normaliser embed the
unlabelled images), or a model run plus labelled data that is embedded here. The accepted images are
written as a CSV manifest (``path,label,confidence``) that ``finegrain train`` reads like any other.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import numpy as np

from finegrain.data.sources import is_image_file, read_source, walk_images
from finegrain.encoders import Encoder, load_encoder, resolve_model_path
from finegrain.errors import ConfigError, DataError, Problem
from finegrain.index.build import index_encoder
from finegrain.index.gallery import GalleryIndex
from finegrain.pseudolabel.assign import Identities, assign_to_identities, check_threshold
from finegrain.utils import atomic_write_text, progress_bar

MANIFEST_COLUMNS = ("path", "label", "confidence")


def read_unlabelled(source: Path | str, root: Path | str | None = None) -> list[Path]:
    """Images to label: a folder (searched recursively), one image, a CSV with a ``path`` column,
    or a list file with one path per line (blank lines and ``#`` comments skipped).

    Relative paths in a file resolve against ``root``, else the file's folder.
    """
    source = Path(source)
    if not source.exists():
        raise DataError(f"unlabelled images not found: {source}")
    if source.is_dir():
        paths = walk_images(source)
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


def _gallery_from_index(folder: Path, batch_size: int) -> tuple[Encoder, np.ndarray, list[str], dict]:
    """The index's labelled vectors and the encoder they were made with (its model, TTA and normaliser)."""
    index, encoder = index_encoder(folder, batch_size=batch_size)
    keep = [i for i, label in enumerate(index.labels) if label is not None]
    if not keep:
        raise DataError(f"{folder}: none of the index's {len(index)} images has a label, so there is nothing to "
                        "assign; index labelled data (class folders, or a manifest or list with labels)")
    labels = [str(index.labels[i]) for i in keep]
    return encoder, index.vectors()[keep], labels, {"gallery_unlabelled": len(index) - len(keep)}


def _gallery_from_data(encoder: Encoder, gallery: Path | str, root: Path | str | None,
                       progress: bool) -> tuple[np.ndarray, list[str], dict]:
    # kind="label": integer class ids in a list file are labels here, never scores.
    records = read_source(gallery, root, kind="label", labels="optional")
    labelled = [r for r in records if r.label is not None]
    if not labelled:
        raise DataError(f"{gallery}: none of its {len(records)} images has a label")
    labels = {r.path: r.label for r in labelled}
    encoded = encoder.encode_files([r.path for r in labelled], skip_bad=True, progress=progress, what="gallery")
    if not encoded.paths:
        raise DataError(f"{gallery}: none of its images could be read", encoded.problems)
    return encoded.vectors, [str(labels[p]) for p in encoded.paths], {
        "gallery_unlabelled": len(records) - len(labelled),
        "gallery_skipped_bad": [str(p.path) for p in encoded.problems]}


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
    tta: str | None = None,
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
    is_index = GalleryIndex.exists(source)
    if is_index and gallery is not None:
        raise ConfigError(f"{source} is an index, which holds its own labelled gallery; "
                          "--gallery is only for a model run")
    if not is_index and gallery is None:
        model = resolve_model_path(source)  # a clear error when it is neither an index nor a model
        raise ConfigError(f"{model} is a model, so --gallery (labelled images to compare against) is required; "
                          "or pass an index folder made by 'finegrain index'")
    targets = read_unlabelled(unlabelled, root)

    if is_index:
        encoder, vectors, labels, info = _gallery_from_index(source, batch_size)
    else:
        encoder = load_encoder(source, need="embedding", tta=tta, batch_size=batch_size)
        vectors, labels, info = _gallery_from_data(encoder, gallery, root, progress)
    ids = Identities.from_labels(labels)

    rows: list[tuple[Path, str, float]] = []
    problems: list[Problem] = []
    below = ambiguous = 0
    bar = progress_bar(total=len(targets), enabled=progress, desc="pseudo-labelling", unit="img")
    for part in encoder.encode_paths(targets):
        problems += part.problems
        bar.update(len(part.paths) + len(part.problems))
        if not part.paths:
            continue
        found = assign_to_identities(part.vectors @ vectors.T, ids, threshold, margin, int(k))
        for path, label, conf in zip(part.paths, found.labels, found.confidences):
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
        "tta": list(encoder.tta),
        "unlabelled": len(targets),
        "accepted": len(rows),
        "rejected": below + ambiguous,
        "rejected_below_threshold": below,
        "rejected_ambiguous": ambiguous,
        "labels": dict(sorted(counts.items())),
        "skipped_bad": [str(p) for p in problems],
    }
