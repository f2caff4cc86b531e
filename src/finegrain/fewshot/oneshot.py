"""N-way one-shot evaluation on Lake's official Omniglot runs (``all_runs.zip`` format).

Each run has N training images (one per class) and N test images; a test image is classified as
the training image nearest in embedding space, and ``class_labels.txt`` gives the right answer.
The runs can be read straight from the zip or from an extracted folder.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from finegrain.data.images import decode_image, resize_square
from finegrain.errors import DataError, Problem


@dataclass
class OneShotRun:
    name: str
    train: list[np.ndarray]  # decoded images, one per class
    test: list[np.ndarray]
    answers: np.ndarray  # answers[i] = index into train of the right class for test[i]


def _reader(path: Path) -> tuple[Callable[[str], bytes], list[str]]:
    if path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        return (lambda n: (path / n).read_bytes()), names
    if zipfile.is_zipfile(path):
        z = zipfile.ZipFile(path)
        return z.read, [n for n in z.namelist() if not n.endswith("/")]
    raise DataError(f"{path}: not a folder or zip of one-shot runs")


def read_runs(path: Path | str, image_size: int) -> list[OneShotRun]:
    """Read every ``runNN/class_labels.txt`` run under ``path``; images resized to image_size."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    read, names = _reader(path)
    label_files = sorted(n for n in names if PurePosixPath(n).name == "class_labels.txt")
    if not label_files:
        raise DataError(f"{path}: no run folders with class_labels.txt found")
    runs = []
    for lf in label_files:
        base = PurePosixPath(lf).parent
        pairs: list[tuple[str, str]] = []
        for lineno, line in enumerate(io.StringIO(read(lf).decode()), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise DataError(f"{path}:{lf}", [Problem(f"{lf}:{lineno}", "expected '<test image> <training image>'")])
            pairs.append((parts[0], parts[1]))

        def load(rel: str, base: PurePosixPath = base) -> np.ndarray:
            # Lines name files as "runNN/test/itemMM.png": relative to the runs' root, not the run.
            name = (base.parent / rel).as_posix() if base.parent.as_posix() != "." else rel
            return resize_square(decode_image(Path(name), read(name)), image_size)

        train_names = sorted({t for _, t in pairs})
        index = {n: i for i, n in enumerate(train_names)}
        runs.append(OneShotRun(
            name=base.as_posix(),
            train=[load(n) for n in train_names],
            test=[load(q) for q, _ in pairs],
            answers=np.array([index[t] for _, t in pairs]),
        ))
    return runs


def oneshot_accuracy(runs: list[OneShotRun], embed: Callable[[np.ndarray], np.ndarray]) -> dict:
    """Mean accuracy over runs; ``embed`` maps uint8 N×S×S×3 to unit-length N×E embeddings."""
    per_run = {}
    for run in runs:
        train = embed(np.stack(run.train))
        test = embed(np.stack(run.test))
        predicted = np.argmax(test @ train.T, axis=1)  # cosine similarity of unit vectors
        per_run[run.name] = float(np.mean(predicted == run.answers))
    values = list(per_run.values())
    return {
        "accuracy": float(np.mean(values)),
        "ways": len(runs[0].train) if runs else 0,
        "runs": len(runs),
        "per_run": per_run,
    }
