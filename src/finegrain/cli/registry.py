"""The one way to add a command: ``@command("name", "help", arg(...), ...)`` on a plain typed function.

The function's keyword arguments are the parsed flags (``--batch-size`` → ``batch_size``); it returns the
exit status. A name with a space (``"detector train"``) is a sub-command of a group.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from finegrain.config import flag


@dataclass(frozen=True)
class Arg:
    names: tuple[str, ...]
    options: dict[str, Any]


def arg(*names: str, **options: Any) -> Arg:
    """An ``argparse`` argument: ``arg("--k", type=int, default=20, help=...)``."""
    return Arg(names, options)


@dataclass(frozen=True)
class Command:
    name: str
    run: Callable[..., int]
    help: str
    args: tuple[Arg, ...]
    description: str | None = None


COMMANDS: dict[str, Command] = {}
GROUPS: dict[str, str] = {}  # group name → its help line


def group(name: str, help: str) -> None:
    """Declare a group of sub-commands (``finegrain detector train|eval``)."""
    GROUPS[name] = help


def command(name: str, help: str, *args: Arg, description: str | None = None) -> Callable:
    def register(func: Callable[..., int]) -> Callable[..., int]:
        if name in COMMANDS:
            raise RuntimeError(f"two commands named {name!r}")
        COMMANDS[name] = Command(name, func, help, tuple(args), description)
        return func

    return register


_TYPES = {"str": str, "int": int, "float": float}


def config_args(cls: type, positional: Sequence[str] = ()) -> list[Arg]:
    """Every dataclass field as a flag (``image_size`` → ``--image-size``). Absent flags stay out of the parsed
    arguments (``argparse.SUPPRESS``), so a command knows which settings were typed."""
    out = []
    for f in dataclasses.fields(cls):
        help_text = f.metadata.get("help", "")
        base = str(f.type).replace(" | None", "")
        default = None if f.default is dataclasses.MISSING else f.default
        if f.name in positional:
            out.append(arg(f.name, type=_TYPES[base], help=help_text))
        elif base == "bool":
            out.append(arg(flag(f.name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                           help=f"{help_text} (default: {default})"))
        else:
            out.append(arg(flag(f.name), type=_TYPES[base], default=argparse.SUPPRESS,
                           help=f"{help_text} (default: {default})"))
    return out


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not the whole usage block
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(commands: dict[str, Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = Parser(prog="finegrain", description="Fine-grained visual recognition from small data.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    groups: dict[str, argparse._SubParsersAction] = {}
    for cmd in commands.values():
        target, name = sub, cmd.name
        if " " in cmd.name:
            group, name = cmd.name.split(" ", 1)
            if group not in groups:
                groups[group] = sub.add_parser(group, help=GROUPS.get(group, "")).add_subparsers(
                    dest="action", required=True, parser_class=Parser)
            target = groups[group]
        p = target.add_parser(name, help=cmd.help, description=cmd.description or cmd.help)
        for a in cmd.args:
            p.add_argument(*a.names, **a.options)
        p.set_defaults(_command=cmd)
    return parser


def tta_arg(extra: str = "") -> Arg:
    """The one ``--tta`` flag of every command that embeds images."""
    return arg("--tta", help="test-time augmentation: a comma list of flip, crops, scales, or none "
                             f"(default: the model's own, usually none){extra}")


def device_arg() -> Arg:
    """The one ``--device`` flag of every command that runs a network (checked when the command starts)."""
    return arg("--device", default="auto", help="where networks compute: auto (a CUDA GPU when present, else the "
                                                "CPU) | cpu | cuda | cuda:N | mps (default: auto)")
