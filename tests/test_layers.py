"""The layers of docs/architecture.md hold: no import points up, and no modules import each
other in a cycle.

Every import counts, wherever it is written: at the top of a module, under ``TYPE_CHECKING``
or inside a function. An import that only a type checker or one function runs is still a
dependency of the design (the imported module's names are in the importer's code).
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "perdure"
DOC = ROOT / "docs" / "architecture.md"


@dataclass(frozen=True)
class Import:
    importer: str  # the importing module, dotted
    target: str  # the imported module, dotted
    line: int


@functools.cache
def _modules() -> dict[str, Path]:
    mods = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


@functools.cache
def _all_imports() -> tuple[Import, ...]:
    return tuple(_imports(_modules()))


def _imports(mods: dict[str, Path]) -> Iterator[Import]:
    """Every import of a perdure module by another, resolved to the module it names (``from
    perdure import workflow`` names ``perdure.workflow``; ``from perdure.client import
    Client`` names ``perdure.client``)."""
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [
                    f"{module}.{alias.name}" if f"{module}.{alias.name}" in mods else module
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                while target and target not in mods and "." in target:
                    target = target.rpartition(".")[0]  # `import perdure.client._x.y` and such
                if target in mods and target != name:
                    yield Import(name, target, node.lineno)


def _layers() -> list[list[str]]:
    """The layer list of docs/architecture.md, top first: the fenced block after the line
    ``<!-- layers: ... -->``, one layer a line, its components separated by spaces."""
    text = DOC.read_text()
    match = re.search(r"<!-- layers:[^>]*-->\s*```[^\n]*\n(.*?)```", text, re.S)
    assert match, "docs/architecture.md has no layer list (a <!-- layers --> fenced block)"
    layers = []
    for line in match.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            layers.append(line.split())
    return layers


def _component(module: str) -> str:
    """``perdure.client._handle`` is in ``client``; the package's own ``__init__`` is
    ``perdure``; a top-level module (``perdure._errors``) is its own component."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "perdure"


def test_every_component_is_in_one_layer() -> None:
    layers = _layers()
    listed = [c for layer in layers for c in layer]
    assert len(listed) == len(set(listed)), f"a component is listed twice: {listed}"
    components = {_component(m) for m in _modules()}
    missing = sorted(components - set(listed))
    assert not missing, f"docs/architecture.md's layer list lacks {missing}: add each to a layer"
    unknown = sorted(set(listed) - components)
    assert not unknown, f"docs/architecture.md's layer list names no such component: {unknown}"


def test_imports_point_down() -> None:
    rank = {c: i for i, layer in enumerate(reversed(_layers())) for c in layer}
    mods = _modules()
    upward = []
    for imp in _all_imports():
        here, there = _component(imp.importer), _component(imp.target)
        if here != there and rank.get(there, -1) >= rank.get(here, -1):
            side = "within its layer" if rank.get(there) == rank.get(here) else "upward"
            path = mods[imp.importer].relative_to(ROOT)
            upward.append(f"{path}:{imp.line} imports {imp.target} ({here} -> {there}, {side})")
    assert not upward, "imports against docs/architecture.md's layers:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for imp in _all_imports():
        graph[imp.importer].add(imp.target)
    cycles = _cycles(graph)
    assert not cycles, "modules that import each other (directly or through others):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_checks_see_what_they_must() -> None:
    """The parsing finds imports under TYPE_CHECKING and inside functions, and the cycle
    finder finds a cycle: so the tests above passing means something."""
    found = {(i.importer, i.target) for i in _all_imports()}
    # A top-level import (client/__init__ re-exports the handle); one under TYPE_CHECKING
    # (the interceptor names handles in its return types only); one inside a function
    # (`perdure server` loads the server's packages only when it runs).
    assert ("perdure.client", "perdure.client._handle") in found
    assert ("perdure.client._interceptor", "perdure.client._handle") in found
    assert ("perdure.cli._server", "perdure.server._run") in found
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
