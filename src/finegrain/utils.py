"""Small shared helpers: atomic writes, seeding, thread settings."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary file in the same folder and rename it into place.

    A run killed mid-write leaves the previous file intact, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def torch_save_atomic(obj: object, path: Path) -> None:
    atomic_write(path, lambda p: torch.save(obj, p))


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
