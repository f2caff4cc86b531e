"""One input example, whatever source it came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Record:
    """An image file with its class label (retrieval), score (regression) and optional fixed split."""

    path: Path
    label: str | None = None
    score: float | None = None
    split: str | None = None
