"""LFW-format pair files: ``name i j`` (same person) and ``name1 i name2 j`` (different people).

The header is ``N`` (one set of N matched then N mismatched pairs, as in View 1's pairsDevTrain.txt)
or ``F N`` (F folds, each N matched then N mismatched, as in View 2's pairs.txt). Image ``i`` of
``name`` is ``ROOT/name/name_000i.<ext>``, for any image extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finegrain.data.sources import IMAGE_EXTENSIONS
from finegrain.errors import DataError, Problem


@dataclass(frozen=True)
class Pair:
    name_a: str
    index_a: int
    name_b: str
    index_b: int

    @property
    def same(self) -> bool:
        return self.name_a == self.name_b


@dataclass
class PairSet:
    pairs: list[Pair]
    folds: np.ndarray  # fold number of each pair (all 0 for a single set)

    @property
    def same(self) -> np.ndarray:
        return np.array([p.same for p in self.pairs])

    @property
    def num_folds(self) -> int:
        return int(self.folds.max()) + 1 if len(self.folds) else 0

    def names(self) -> set[str]:
        return {n for p in self.pairs for n in (p.name_a, p.name_b)}

    def fold_names(self, fold: int) -> set[str]:
        return {n for p, f in zip(self.pairs, self.folds) if f == fold for n in (p.name_a, p.name_b)}


def _parse_line(parts: list[str]) -> Pair:
    if len(parts) == 3:
        name, i, j = parts
        return Pair(name, int(i), name, int(j))
    if len(parts) == 4:
        a, i, b, j = parts
        return Pair(a, int(i), b, int(j))
    raise ValueError("expected 'name i j' or 'name1 i name2 j'")


def read_pairs(path: Path | str) -> PairSet:
    """Parse a pair file; every bad line is reported with its line number in one error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"pair file not found: {path}")
    lines = path.read_text(errors="replace").splitlines()
    header = lines[0].split() if lines else []
    try:
        folds, per_fold = (1, int(header[0])) if len(header) == 1 else (int(header[0]), int(header[1]))
        if len(header) not in (1, 2) or folds < 1 or per_fold < 1:
            raise ValueError
    except (ValueError, IndexError):
        raise DataError(f"{path}:1: the header must be 'N' or 'FOLDS N', not {' '.join(header)!r}") from None
    pairs, problems = [], []
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split()
        if not parts:
            continue
        try:
            pair = _parse_line(parts)
            if min(pair.index_a, pair.index_b) < 1:
                raise ValueError("image numbers start at 1")
            pairs.append((lineno, pair))
        except ValueError as e:
            reason = str(e).replace("invalid literal for int() with base 10", "not a number")
            problems.append(Problem(f"{path}:{lineno}", reason))
    if problems:
        raise DataError(f"{path}: {len(problems)} bad line(s)", problems)
    expected = 2 * folds * per_fold
    if len(pairs) != expected:
        raise DataError(f"{path}: the header promises {folds} fold(s) of {per_fold} matched + {per_fold} mismatched "
                        f"pairs ({expected} lines), but there are {len(pairs)}")
    for n, (lineno, pair) in enumerate(pairs):
        should_match = (n % (2 * per_fold)) < per_fold
        if pair.same != should_match:
            kind = "matched 'name i j'" if should_match else "mismatched 'name1 i name2 j'"
            problems.append(Problem(f"{path}:{lineno}", f"expected a {kind} pair here"))
    if problems:
        raise DataError(f"{path}: pairs out of the matched/mismatched order", problems)
    fold_of = np.repeat(np.arange(folds), 2 * per_fold)
    return PairSet([p for _, p in pairs], fold_of)


def image_path(root: Path, name: str, index: int) -> Path | None:
    """``root/name/name_000i.<ext>`` for the first image extension that exists."""
    stem = root / name / f"{name}_{index:04d}"
    for ext in (".jpg", ".png", *sorted(IMAGE_EXTENSIONS)):
        if (candidate := stem.with_suffix(ext)).is_file():
            return candidate
    return None


def resolve_images(pairs: PairSet, root: Path | str) -> tuple[list[Path], np.ndarray]:
    """The distinct images the pairs use, and for each pair the indices ``[a, b]`` into that list."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image root not found: {root}")
    paths: list[Path] = []
    where: dict[tuple[str, int], int] = {}
    problems = []
    index = np.zeros((len(pairs.pairs), 2), dtype=np.int64)
    for row, pair in enumerate(pairs.pairs):
        for col, key in enumerate(((pair.name_a, pair.index_a), (pair.name_b, pair.index_b))):
            if key not in where:
                found = image_path(root, *key)
                if found is None:
                    problems.append(Problem(root / key[0] / f"{key[0]}_{key[1]:04d}.*", "no such image"))
                    where[key] = -1
                else:
                    where[key] = len(paths)
                    paths.append(found)
            index[row, col] = where[key]
    if problems:
        raise DataError(f"{len(problems)} image(s) named in the pair file are missing under {root}", problems)
    return paths, index
