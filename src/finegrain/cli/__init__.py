"""The ``finegrain`` command: each subcommand is a thin, typed function over the library.

Commands register themselves with ``finegrain.cli.registry.command``; the modules below are imported once,
here, so the parser knows them all. Errors in the input print one line naming the flag or file, never a
traceback (exit status 2).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from finegrain.cli import (  # noqa: F401  (each module registers its commands)
    classify,
    explain,
    faces,
    fewshot,
    gallery,
    models,
    pseudolabel,
    serve,
    track,
    train,
    verification,
)
from finegrain.cli.registry import COMMANDS, build_parser
from finegrain.errors import FinegrainError

__all__ = ["COMMANDS", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    args.pop("command")
    args.pop("action", None)
    command = args.pop("_command")
    try:
        return command.run(**args)
    except FinegrainError as e:
        print(f"finegrain {command.name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"finegrain {command.name}: interrupted; a training run continues with --resume", file=sys.stderr)
        return 130
