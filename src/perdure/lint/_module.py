"""Lints the workflow classes of a module: their methods and the module's functions they call.

Workflow classes are those decorated with ``perdure.workflow.defn``, however it was imported.
Every method of such a class is workflow code (run, init, handlers, validators, helpers),
except one decorated with ``perdure.activity.defn``; so is every function of the same module
that workflow code calls by name, and the functions those call, except activities.
"""

from __future__ import annotations

import ast
import functools
import inspect
import io
import linecache
import logging
import os
import re
import sys
import tokenize
import weakref
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

from perdure.lint._checker import FunctionChecker, Hit
from perdure.lint._finding import Finding
from perdure.lint._names import (
    ClassAttributes,
    Scope,
    bind_arguments,
    bind_class_body,
    bind_self_attributes,
    bind_statements,
    resolve,
    statements,
)

log = logging.getLogger("perdure.lint")

_WORKFLOW_DEFN: Final = "perdure.workflow.defn"
_ACTIVITY_DEFN: Final = "perdure.activity.defn"
_NOT_SELF: Final = frozenset({"builtins.staticmethod", "builtins.classmethod"})
_FUNCTION = ast.FunctionDef | ast.AsyncFunctionDef

_SUPPRESSION = re.compile(r"#\s*perdure:\s*allow-nondeterminism(?:\[(?P<codes>[^\]]*)\])?")
_LINE_BREAK = re.compile(r"\r\n?|\n")
# Directories a recursive search skips (a path given explicitly is always linted).
_SKIPPED_DIRECTORIES: Final = frozenset(
    {"__pycache__", "build", "dist", "node_modules", "site-packages", "venv"}
)


def lint_source(source: str, path: str = "<string>") -> list[Finding]:
    """Lint the workflow classes defined in one module's source.

    Args:
        source: the module's text.
        path: the file name to report findings under.

    Returns:
        The findings, in file order.

    Raises:
        SyntaxError: the source does not parse.
    """
    by_class = _lint_module(source, path)
    return sorted({finding for findings in by_class.values() for finding in findings})


def lint_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Finding]:
    """Lint the workflow classes in files, and in the ``.py`` files under directories.

    A directory is searched recursively, skipping hidden directories, ``__pycache__``,
    virtual environments and build output; files that never mention ``perdure`` are
    skipped unread by the parser (they cannot define a workflow).

    Example::

        for finding in lint_paths(["src/myapp"]):
            print(finding)  # src/myapp/flows.py:12:16: DET001 time.time() is not ...

    Raises:
        FileNotFoundError: a path does not exist.
        SyntaxError: a file that mentions perdure does not parse (or decode).
    """
    findings: list[Finding] = []
    for file in python_files(paths):
        findings.extend(lint_file(file))
    return findings


def lint_workflow(cls: type) -> list[Finding]:
    """Lint one workflow class, from the source file of its module.

    The result is cached per class. A class whose source cannot be read (defined in a REPL
    or by ``exec``, or its file changed since it was imported) has no findings.

    Args:
        cls: a ``@workflow.defn`` class.
    """
    cached = _by_class.get(cls)
    if cached is None:
        cached = _by_class[cls] = _lint_class(cls)
    return list(cached)


_by_class: weakref.WeakKeyDictionary[type, tuple[Finding, ...]] = weakref.WeakKeyDictionary()


def _lint_class(cls: type) -> tuple[Finding, ...]:
    try:
        filename = inspect.getsourcefile(cls)
    except (TypeError, OSError):
        filename = None
    if not filename:
        log.debug("Not linting %s: its source is not available", cls.__qualname__)
        return ()
    module = sys.modules.get(cls.__module__)
    source = "".join(linecache.getlines(filename, vars(module) if module else None))
    try:
        by_class = _lint_module_cached(source, filename)
    except (SyntaxError, ValueError, RecursionError) as exc:  # changed on disk, say
        log.debug("Not linting %s: %s", cls.__qualname__, exc)
        return ()
    except SystemError as exc:
        # CPython 3.11's ast module, once a RecursionError went through it anywhere in the
        # process, may refuse every later parse ("AST constructor recursion depth
        # mismatch"): not this source's fault, and nothing a worker should warn about.
        log.debug("Not linting %s: Python could not parse it (%s)", cls.__qualname__, exc)
        return ()
    except Exception:
        # The lint is advice: a bug in it must not keep a worker from starting.
        log.warning("Could not lint %s (a perdure bug)", cls.__qualname__, exc_info=True)
        return ()
    return by_class.get(cls.__qualname__, ())


@functools.lru_cache(maxsize=64)
def _lint_module_cached(source: str, path: str) -> Mapping[str, tuple[Finding, ...]]:
    return _lint_module(source, path)


def python_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """The files named, and the ``.py`` files under the directories named, in order."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for root, directories, files in os.walk(path):
                directories[:] = sorted(
                    d
                    for d in directories
                    if not d.startswith(".") and d not in _SKIPPED_DIRECTORIES
                )
                yield from (Path(root, f) for f in sorted(files) if f.endswith(".py"))
        elif path.exists():
            yield path
        else:
            raise FileNotFoundError(f"No such file or directory: {path}")


def lint_file(path: Path) -> list[Finding]:
    """Lint one file (nothing to do if it never mentions perdure)."""
    with tokenize.open(path) as file:  # honours a coding declaration
        source = file.read()
    return lint_source(source, str(path)) if "perdure" in source else []


# -- one module --------------------------------------------------------------------------------


def _lint_module(source: str, path: str) -> dict[str, tuple[Finding, ...]]:
    tree = ast.parse(source, filename=path)
    linter = _ModuleLinter(tree)
    lines = _LINE_BREAK.split(source)
    allowed = _suppressions(source)
    result: dict[str, tuple[Finding, ...]] = {}
    for qualname, hits in linter.workflows():
        findings = {_finding(hit, path, lines) for hit in hits if not _suppressed(hit, allowed)}
        result[qualname] = (*result.get(qualname, ()), *sorted(findings))
    return result


class _ModuleLinter:
    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.scope = Scope(None)
        bind_statements(self.scope, tree.body, module=True)
        self.functions = {s.name: s for s in statements(tree.body) if isinstance(s, _FUNCTION)}
        self._helpers: dict[str, tuple[list[Hit], set[str]]] = {}

    def workflows(self) -> Iterator[tuple[str, list[Hit]]]:
        for qualname, cls, scope in _classes(self.tree.body, "", self.scope):
            if _decorated(cls, _WORKFLOW_DEFN, scope):
                yield qualname, self._lint_workflow(cls, scope)

    def _lint_workflow(self, cls: ast.ClassDef, scope: Scope) -> list[Hit]:
        attributes = ClassAttributes()
        bind_class_body(attributes, scope, cls.body)
        methods: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, Scope]] = []
        for method in statements(cls.body):
            if not isinstance(method, _FUNCTION) or _decorated(method, _ACTIVITY_DEFN, scope):
                continue
            positional = [*method.args.posonlyargs, *method.args.args]
            plain = not any(_decorator(d, scope) in _NOT_SELF for d in method.decorator_list)
            method_scope = Scope(scope, attributes)
            bind_arguments(
                method_scope, method.args, positional[0].arg if plain and positional else None
            )
            bind_statements(method_scope, method.body)
            bind_self_attributes(attributes, method_scope, method.body)
            methods.append((method, method_scope))
        hits: list[Hit] = []
        called: set[str] = set()
        for method, method_scope in methods:
            checker = FunctionChecker(method_scope)
            checker.check_body(method.body)
            hits.extend(checker.hits)
            called |= checker.helpers
        seen: set[str] = set()
        while called:
            name = called.pop()
            if name in seen or name not in self.functions:
                continue
            seen.add(name)
            helper_hits, helper_calls = self._lint_helper(name)
            hits.extend(helper_hits)
            called |= helper_calls
        return hits

    def _lint_helper(self, name: str) -> tuple[list[Hit], set[str]]:
        if name not in self._helpers:
            function = self.functions[name]
            if _decorated(function, _ACTIVITY_DEFN, self.scope):
                self._helpers[name] = ([], set())
            else:
                scope = Scope(self.scope)
                bind_arguments(scope, function.args, None)
                bind_statements(scope, function.body)
                checker = FunctionChecker(scope)
                checker.check_body(function.body)
                self._helpers[name] = (checker.hits, checker.helpers)
        return self._helpers[name]


def _classes(
    body: list[ast.stmt], prefix: str, scope: Scope
) -> Iterator[tuple[str, ast.ClassDef, Scope]]:
    """Every class under ``body``, with its ``__qualname__`` and the scope it is defined in."""
    for statement in statements(body):
        if isinstance(statement, ast.ClassDef):
            qualname = prefix + statement.name
            yield qualname, statement, scope
            # A class body is no scope for the functions in it: they see the enclosing one.
            yield from _classes(statement.body, qualname + ".", scope)
        elif isinstance(statement, _FUNCTION) and _defines_class(statement):
            inner = Scope(scope)
            bind_arguments(inner, statement.args, None)
            bind_statements(inner, statement.body)
            yield from _classes(statement.body, f"{prefix}{statement.name}.<locals>.", inner)


def _defines_class(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(node, ast.ClassDef) for node in ast.walk(function))


def _decorator(decorator: ast.expr, scope: Scope) -> str | None:
    return resolve(decorator.func if isinstance(decorator, ast.Call) else decorator, scope)


def _decorated(
    node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef, dotted: str, scope: Scope
) -> bool:
    return any(_decorator(d, scope) == dotted for d in node.decorator_list)


# -- placing and silencing findings ------------------------------------------------------------


def _finding(hit: Hit, path: str, lines: list[str]) -> Finding:
    text = lines[hit.line - 1] if hit.line <= len(lines) else ""
    column = len(text.encode()[: hit.offset].decode(errors="replace")) + 1
    return Finding(path, hit.line, column, hit.rule.code, hit.message)


def _suppressions(source: str) -> dict[int, frozenset[str] | None]:
    """Lines with a suppression comment: the codes it names, or None for every code."""
    if "allow-nondeterminism" not in source:
        return {}
    found: dict[int, frozenset[str] | None] = {}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type == tokenize.COMMENT:
            match = _SUPPRESSION.search(token.string)
            if match is not None:
                codes = match.group("codes")
                found[token.start[0]] = (
                    None
                    if codes is None
                    else frozenset(c.strip() for c in codes.split(",") if c.strip())
                )
    return found


def _suppressed(hit: Hit, allowed: dict[int, frozenset[str] | None]) -> bool:
    if hit.line not in allowed:
        return False
    codes = allowed[hit.line]
    return codes is None or hit.rule.code in codes
