"""MOTChallenge files: exact round trips, and malformed lines reported by file and line."""

from __future__ import annotations

import pytest

from finegrain.errors import DataError
from finegrain.track.mot import MotRow, read_mot, write_mot


def test_write_then_read_gives_the_same_rows(tmp_path):
    rows = [
        MotRow(1, 1, 10.0, 20.5, 64.25, 64.25, 0.987654321),  # a tracker's row: score, no class or visibility
        MotRow(1, 2, -3.5, 0.0, 100.0, 101.0, 1.0, 1, 0.0),  # ground truth: hidden, box past the left edge
        MotRow(2, 1, 11.123456789, 21.0, 64.0, 64.0, 1.0, 1, 0.735),
        MotRow(12, 7, 0.1 + 0.2, 1e-3, 30.0, 30.0),  # floats that print long still read back exactly
    ]
    path = write_mot(tmp_path / "out" / "seq.txt", rows)
    assert read_mot(path) == rows
    lines = path.read_text().splitlines()
    assert lines[0] == "1,1,10,20.5,64.25,64.25,0.987654321,-1,-1,-1"
    assert lines[1] == "1,2,-3.5,0,100,101,1,1,0,-1"


def test_short_mot15_style_lines_take_defaults(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,3,5,6,7,8\n\n2,-1,5,6,7,8,0.5\n3,4,5,6,7,8,1,1,0.25\n")
    assert read_mot(path) == [MotRow(1, 3, 5, 6, 7, 8), MotRow(2, -1, 5, 6, 7, 8, 0.5),
                              MotRow(3, 4, 5, 6, 7, 8, 1.0, 1, 0.25)]


def test_box_helpers():
    row = MotRow.from_box(3, 2, (10, 20, 50, 80), conf=0.9)
    assert (row.x, row.y, row.w, row.h, row.conf) == (10, 20, 40, 60, 0.9)
    assert row.box == (10, 20, 50, 80)


def test_malformed_lines_name_the_file_and_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1,1,0,0,10,10,1,-1,-1,-1\n"
                    "2,1,0,zero,10,10,1,-1,-1,-1\n"  # line 2: not a number
                    "3,1,0,0\n"  # line 3: too few fields
                    "0,1,0,0,10,10\n"  # line 4: frames start at 1
                    "5,1.5,0,0,10,10\n"  # line 5: fractional id
                    "6,1,0,0,-10,10\n")  # line 6: negative width
    with pytest.raises(DataError) as error:
        read_mot(path)
    message = str(error.value)
    assert "5 malformed line(s)" in message and str(path) in message
    for line, reason in [(2, "not a number: 'zero'"), (3, "got 4"), (4, "numbered from 1"),
                         (5, "whole number"), (6, "must not be negative")]:
        assert any(text.startswith(f"  - {path}:{line}: ") and reason in text for text in message.splitlines())
    assert f"{path}:1:" not in message


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read the MOT file"):
        read_mot(tmp_path / "nope.txt")
