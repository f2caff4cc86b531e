"""Small shared helpers: atomic writes, seeding, thread settings."""

from __future__ import annotations

import os
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary file in the same folder and rename it into place.

    A run killed mid-write leaves the previous file intact, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private; the result should read like any other
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def progress_bar(iterable=None, *, enabled: bool = True, **kw):
    """A tqdm bar on an interactive terminal only: redirected logs get summary lines instead."""
    import sys

    from tqdm import tqdm

    return tqdm(iterable, disable=not (enabled and sys.stderr.isatty()), dynamic_ncols=True, **kw)


def extract_zip_once(zip_path: Path, target: Path) -> Path:
    """Unpack ``zip_path`` into ``target`` unless a finished unpacking is already there.

    Unpacks beside the target and renames into place, so a killed run never leaves a half folder
    that later runs would mistake for a complete one.
    """
    import shutil
    import zipfile

    target = Path(target)
    if (target / ".complete").exists():
        return target
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(tmp)
    (tmp / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def output_names(paths: list[Path]) -> dict[Path, Path]:
    """A distinct relative name (no suffix) per input file, for the files made from it.

    Names are paths relative to the inputs' common folder, so ``a/x.jpg`` and ``b/x.jpg`` become ``a/x`` and
    ``b/x``; inputs that differ only in their suffix keep it (``x.jpg``, ``x.png``).
    """
    resolved = {p: Path(os.path.abspath(p)) for p in paths}
    if not resolved:
        return {}
    common = Path(os.path.commonpath([r.parent for r in resolved.values()]))
    relative = {p: r.relative_to(common) for p, r in resolved.items()}
    names = {p: rel.with_suffix("") for p, rel in relative.items()}
    counts = Counter(set(zip(names.values(), relative.values())))  # the same file twice is no clash
    clashes = Counter(name for name, _ in counts)
    return {p: relative[p] if clashes[names[p]] > 1 else names[p] for p in paths}
