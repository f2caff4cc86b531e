"""Read a data source (ImageFolder tree, CSV manifest or whitespace list) into records.

Every reader collects all bad lines before raising, so the user can fix a file in one pass.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

from finegrain.data.records import Record
from finegrain.errors import ConfigError, DataError, Problem

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".pbm"}
)
KINDS = ("auto", "label", "score")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def walk_images(root: Path) -> list[Path]:
    """All image files under root; hidden files and folders (e.g. macOS `._x.jpg`) are skipped."""
    found: list[Path] = []
    seen: set[str] = set()
    # followlinks: datasets are often assembled from symlinked folders; `seen` breaks link loops.
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(folder, f) for f in files if not f.startswith(".") and is_image_file(Path(f)))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def expand_images(items: Sequence[str | Path]) -> list[Path]:
    """Command-line image arguments: each folder stands for every image inside it (any depth).

    A folder without images is an error naming it, not a silent no-op.
    """
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = walk_images(item)
            if not found:
                raise DataError(f"{item}: no images in this folder")
            paths += found
        else:
            paths.append(item)
    return paths


def read_folder(root: Path | str, labels: str = "required") -> list[Record]:
    """ImageFolder tree: the label is the image's folder relative to root ("Alphabet/character01").

    With ``labels="optional"`` images directly in the root are read too, without a label.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"not a folder: {root}")
    images = walk_images(root)
    if not images:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise DataError(f"no images found in {root} (looked for {exts}, in class sub-folders)")
    loose = [p for p in images if p.parent == root]
    if loose and labels == "optional":
        return [Record(path=p, label=None if p.parent == root else p.parent.relative_to(root).as_posix())
                for p in images]
    if loose:
        raise DataError(
            f"{root}: images must sit in class sub-folders (the folder name is the label), "
            f"but {len(loose)} are directly in the root folder",
            [Problem(p, "image directly in the root folder, so it has no class") for p in loose],
        )
    return [Record(path=p, label=p.parent.relative_to(root).as_posix()) for p in images]


def _resolve(raw: str, base: Path) -> Path:
    p = Path(raw)
    return p if p.is_absolute() else base / p


def _parse_score(raw: str) -> float | None:
    """A finite float, or None when the text is not one."""
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig: spreadsheets often write a byte-order mark that would corrupt the first header.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None


def read_manifest(path: Path | str, root: Path | str | None = None, labels: str = "required") -> list[Record]:
    """CSV with a header: `path` plus `label` and/or `score` (optional with ``labels="optional"``), optional
    `split`; other columns ignored."""
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    # newline="": the csv module handles quoted fields that span lines itself.
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    reader.fieldnames = columns
    shown = ", ".join(columns) if columns else "none"
    if "path" not in columns:
        raise DataError(f"{path}: manifest has no 'path' column (columns: {shown})")
    if "label" not in columns and "score" not in columns and labels != "optional":
        raise DataError(f"{path}: manifest needs a 'label' or 'score' column (columns: {shown})")

    records: list[Record] = []
    problems: list[Problem] = []
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        raw_path = (row.get("path") or "").strip()
        if not raw_path:
            problems.append(Problem(where, "empty 'path' field"))
            continue
        label = (row.get("label") or "").strip() or None
        raw_score = (row.get("score") or "").strip()
        score = None
        if raw_score:
            score = _parse_score(raw_score)
            if score is None:
                problems.append(Problem(where, f"score {raw_score!r} is not a finite number"))
                continue
        split = (row.get("split") or "").strip().lower() or None
        records.append(Record(_resolve(raw_path, base), label=label, score=score, split=split))
    if problems:
        raise DataError(f"{path}: {len(problems)} bad lines", problems)
    if not records:
        raise DataError(f"{path}: manifest has a header but no rows")
    return records


def read_list(path: Path | str, root: Path | str | None = None, kind: str = "auto",
              labels: str = "required") -> list[Record]:
    """Whitespace list `<path> <label-or-score>` per line (SCUT-FBP5500 `labels.txt`, `splits/*.txt`).

    kind="auto" reads the second field as a score when it is numeric on every line, else as a label;
    integer class ids therefore need kind="label" (``--kind label``). With ``labels="optional"`` a list of
    bare paths (one per line) is read too, without labels.
    """
    if kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    entries: list[tuple[str, str, str]] = []  # (where, path, value)
    problems: list[Problem] = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        # rsplit: the value never has spaces, a file name might.
        fields = text.rsplit(maxsplit=1)
        where = f"{path}, line {lineno}"
        if labels == "optional" and (len(fields) == 1 or is_image_file(Path(text))):
            entries.append((where, text, ""))
            continue
        if len(fields) != 2:
            problems.append(Problem(where, f"expected '<path> <label-or-score>', got {text!r}"))
            continue
        entries.append((where, fields[0], fields[1]))

    if kind == "auto":
        numeric = all(_is_float(value) for _, _, value in entries if value)
        kind = "score" if any(value for _, _, value in entries) and numeric else "label"
    records: list[Record] = []
    for where, raw_path, value in entries:
        if not value or kind == "label":
            records.append(Record(_resolve(raw_path, base), label=value or None))
            continue
        score = _parse_score(value)
        if score is None:
            problems.append(Problem(where, f"score {value!r} is not a finite number"))
        else:
            records.append(Record(_resolve(raw_path, base), score=score))
    if problems:
        raise DataError(f"{path}: {len(problems)} bad lines", problems)
    if not records:
        raise DataError(f"{path}: no entries (expected '<path> <label-or-score>' lines)")
    return records


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_source(source: Path | str, root: Path | str | None = None, kind: str = "auto",
                labels: str = "required") -> list[Record]:
    """Dispatch on what `source` is: a folder, a `.csv` manifest, or any other file as a list.

    ``kind``: how a list's second column is read (auto | label | score). ``labels="optional"`` also accepts
    unlabelled images (a flat folder, a list of bare paths): galleries and normalisers need no labels.
    """
    if kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    source = Path(source)
    if not source.exists():
        raise DataError(f"data source not found: {source}")
    if source.is_dir():
        return read_folder(source, labels=labels)
    if source.suffix.lower() == ".csv":
        return read_manifest(source, root=root, labels=labels)
    return read_list(source, root=root, kind=kind, labels=labels)
