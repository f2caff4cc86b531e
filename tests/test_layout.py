"""The package layout: no import cycles, between modules or between packages; one way to register a command."""

from __future__ import annotations

import ast
from pathlib import Path

import finegrain

SRC = Path(finegrain.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module's imports of other finegrain modules, at any depth (function-level imports included)."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                # "from finegrain.x import y" imports the module x.y when there is one, else the names of x.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_import_cycles_between_modules():
    graph = _imports()
    # A package's __init__ re-exporting its own modules is not a cycle to untangle.
    for name, edges in graph.items():
        graph[name] = {e for e in edges if not (name.startswith(e + ".") and SRC.joinpath(*e.split(".")[1:],
                                                                                              "__init__.py").exists())}
    assert _cycles(graph) == []


def test_no_import_cycles_between_packages():
    packages: dict[str, set[str]] = {}
    for name, edges in _imports().items():
        packages.setdefault(_package_of(name), set()).update(
            _package_of(e) for e in edges if _package_of(e) != _package_of(name))
    assert _cycles(packages) == []


def test_commands_register_one_way():
    """Every command comes from ``@command`` in ``finegrain.cli``; nothing outside it builds parsers."""
    from finegrain.cli import COMMANDS

    assert {c.run.__module__.rpartition(".")[0] for c in COMMANDS.values()} == {"finegrain.cli"}
    outside = [p for p in SRC.rglob("*.py") if "cli" not in p.relative_to(SRC).parts and "add_parser" in p.read_text()]
    assert outside == []
