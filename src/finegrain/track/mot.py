"""MOTChallenge text files: one box per line, ``frame,id,x,y,w,h,conf,class,visibility,-1``.

Frames are numbered from 1; ``x, y`` is the box's top-left corner and ``w, h`` its size, in pixels. The same
layout serves tracker output and ground truth, as in MOT16/17:

* tracker output (hypotheses): ``conf`` is the detection score, ``class`` and ``visibility`` are ``-1``;
* ground truth: ``conf`` is the "considered" flag (1), ``class`` is 1 (a face) and ``visibility`` is the
  fraction of the box that can be seen (0-1), so an occluded face keeps its track id while hidden.

Readers accept 6 to 10 columns (missing ones take their defaults); writers always write 10, the last one the
unused 3-D coordinate ``-1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from finegrain.errors import DataError, Problem
from finegrain.utils import atomic_write_text


@dataclass(frozen=True)
class MotRow:
    """One box of one track in one frame."""

    frame: int  # from 1
    track_id: int
    x: float  # top-left corner, pixels
    y: float
    w: float
    h: float
    conf: float = 1.0  # detection score (hypotheses) or the "considered" flag (ground truth)
    label: int = -1  # MOT16's class column: -1 unknown, 1 a face in our ground truth
    vis: float | None = None  # visible fraction of the box (ground truth); None is written as -1

    @property
    def box(self) -> tuple[float, float, float, float]:
        """``x1, y1, x2, y2``, the convention of ``finegrain.boxes`` and the face detector."""
        return (self.x, self.y, self.x + self.w, self.y + self.h)

    @classmethod
    def from_box(cls, frame: int, track_id: int, box: Iterable[float], conf: float = 1.0, label: int = -1,
                 vis: float | None = None) -> MotRow:
        """A row from an ``x1, y1, x2, y2`` box (e.g. a detector's ``Face.box``)."""
        x1, y1, x2, y2 = (float(v) for v in box)
        return cls(int(frame), int(track_id), x1, y1, x2 - x1, y2 - y1, float(conf), int(label), vis)


def _number(value: float) -> str:
    # repr is Python's shortest string that reads back to the same float, so write → read is exact;
    # whole numbers lose their ".0" to keep files short and familiar.
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def format_row(row: MotRow) -> str:
    """The row as one line of a MOT file (without the newline)."""
    vis = -1 if row.vis is None else row.vis
    fields = (row.frame, row.track_id, row.x, row.y, row.w, row.h, row.conf, row.label, vis, -1)
    return ",".join(_number(v) for v in fields)


def write_mot(path: str | Path, rows: Iterable[MotRow]) -> Path:
    """Write ``rows`` in the given order (trackers emit frame by frame); atomic, so a killed run never leaves a
    half-written file."""
    path = Path(path)
    atomic_write_text(path, "".join(format_row(r) + "\n" for r in rows))
    return path


def _integer(text: str, what: str) -> int:
    value = float(text)
    # Some tools write "12.0" for a frame number; a real fraction is an error, not something to round away.
    if not value.is_integer():
        raise ValueError(f"{what} must be a whole number, got {text!r}")
    return int(value)


def parse_row(line: str) -> MotRow:
    """One line of a MOT file; ``ValueError`` says what is wrong with it."""
    fields = [f.strip() for f in line.strip().split(",")]
    if not 6 <= len(fields) <= 10:
        raise ValueError(f"expected 6 to 10 comma-separated fields (frame,id,x,y,w,h,...), got {len(fields)}")
    try:
        numbers = [float(f) for f in fields]
    except ValueError:
        bad = next(f for f in fields if not _is_number(f))
        raise ValueError(f"not a number: {bad!r}") from None
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError("every field must be a finite number")
    frame = _integer(fields[0], "frame")
    if frame < 1:
        raise ValueError(f"frames are numbered from 1, got {frame}")
    track_id = _integer(fields[1], "track id")
    x, y, w, h = numbers[2:6]
    if w < 0 or h < 0:
        raise ValueError(f"box width and height must not be negative, got {w:g}×{h:g}")
    conf = numbers[6] if len(numbers) > 6 else 1.0
    label = _integer(fields[7], "class") if len(fields) > 7 else -1
    vis = numbers[8] if len(numbers) > 8 else -1.0
    if vis != -1 and not 0 <= vis <= 1:
        raise ValueError(f"visibility must be in [0, 1] or -1 (unknown), got {vis:g}")
    return MotRow(frame, track_id, x, y, w, h, conf, label, None if vis == -1 else vis)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_mot(path: str | Path) -> list[MotRow]:
    """Every row of a MOT file, in file order; blank lines are skipped.

    Raises ``DataError`` listing every malformed line as ``FILE:LINE: reason``, so all can be fixed at once.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read the MOT file {path}", [Problem(path, str(error))]) from None
    rows: list[MotRow] = []
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(parse_row(line))
        except ValueError as error:
            problems.append(Problem(f"{path}:{number}", f"{error} in {line.strip()[:80]!r}"))
    if problems:
        raise DataError(f"{len(problems)} malformed line(s) in the MOT file {path}", problems)
    return rows
