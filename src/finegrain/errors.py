"""Errors that reach the user as one clear message, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class FinegrainError(Exception):
    """Base class: the CLI prints the message and exits with status 2."""


class ConfigError(FinegrainError):
    """A bad option; the message names the flag."""


@dataclass(frozen=True)
class Problem:
    """One bad input file (or line) and why it is bad."""

    path: Path | str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class DataError(FinegrainError):
    """Bad input data; carries every problem found, so the user fixes them all at once."""

    def __init__(self, summary: str, problems: list[Problem] | None = None):
        self.summary = summary
        self.problems = list(problems or [])
        lines = [summary] + [f"  - {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  ... and {len(self.problems) - 50} more")
        super().__init__("\n".join(lines))
