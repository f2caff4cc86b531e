"""Read face boxes: the simple ``<image> x1 y1 x2 y2`` list and COCO JSON, into ``{image: (N, 4) array}``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from finegrain.errors import DataError, Problem


def read_box_list(path: str | Path) -> dict[str, np.ndarray]:
    """One box per line: ``<image> x1 y1 x2 y2`` (blank lines and ``#`` comments skipped)."""
    path = Path(path)
    boxes: dict[str, list[list[float]]] = {}
    problems: list[Problem] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            if len(fields) != 5:
                raise ValueError(f"expected '<image> x1 y1 x2 y2', got {len(fields)} fields")
            x1, y1, x2, y2 = map(float, fields[1:])
            if not (x2 > x1 and y2 > y1) or not np.isfinite([x1, y1, x2, y2]).all():
                raise ValueError(f"empty or invalid box {x1:g} {y1:g} {x2:g} {y2:g}")
        except ValueError as error:
            problems.append(Problem(f"{path}:{number}", str(error)))
            continue
        boxes.setdefault(fields[0], []).append([x1, y1, x2, y2])
    if problems:
        raise DataError(f"{path}: {len(problems)} bad line(s)", problems)
    return {name: np.asarray(b, dtype=np.float64) for name, b in boxes.items()}


def read_coco(path: str | Path, category: str | None = None) -> dict[str, np.ndarray]:
    """COCO JSON (``images``, ``annotations`` with ``bbox`` = x, y, w, h); optionally one category by name."""
    path = Path(path)
    try:
        coco = json.loads(path.read_text())
        names = {image["id"]: image["file_name"] for image in coco["images"]}
        wanted = None
        if category is not None:
            wanted = {c["id"] for c in coco.get("categories", []) if c["name"] == category}
            if not wanted:
                raise DataError(f"{path}: no category named {category!r}")
        boxes: dict[str, list[list[float]]] = {name: [] for name in names.values()}
        for ann in coco["annotations"]:
            if wanted is not None and ann.get("category_id") not in wanted:
                continue
            x, y, w, h = map(float, ann["bbox"])
            if w <= 0 or h <= 0:
                raise DataError(f"{path}: annotation {ann.get('id')} has an empty bbox {ann['bbox']}")
            boxes[names[ann["image_id"]]].append([x, y, x + w, y + h])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}: not a COCO annotation file ({type(error).__name__}: {error})") from None
    return {name: np.asarray(b, dtype=np.float64).reshape(-1, 4) for name, b in boxes.items()}


def read_annotations(path: str | Path) -> dict[str, np.ndarray]:
    """Either format, chosen by the file's suffix (``.json`` → COCO)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    return read_coco(path) if path.suffix.lower() == ".json" else read_box_list(path)
