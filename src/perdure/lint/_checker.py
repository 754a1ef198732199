"""Finds the code in one function of workflow code that is not replay-safe."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Final

from perdure._common.nondeterminism import FORBIDDEN, SET_ORDER, Forbidden, Rule
from perdure.lint._names import (
    MODULE_PREFIX,
    Scope,
    bind_arguments,
    bind_statements,
    is_set,
    resolve,
)


@dataclass(frozen=True, slots=True)
class Hit:
    """One finding, before it is placed in a file."""

    line: int
    offset: int  # ast's column: UTF-8 bytes from the start of the line
    rule: Rule
    message: str


@dataclass(frozen=True, slots=True)
class _Table:
    calls: dict[str, Forbidden]  # "time.time", and "threading.Thread().start" for instances
    modules: dict[str, Forbidden]  # every call into these modules ("requests")
    values: dict[str, Forbidden]  # any use of these ("os.environ")


def _build_table() -> _Table:
    table = _Table({}, {}, {})
    for row in FORBIDDEN:
        if not row.names:
            table.modules[row.owner] = row
        for name in row.names:
            if row.value:
                table.values[f"{row.owner}.{name}"] = row
            else:
                table.calls[f"{row.owner}.{name}"] = row
                table.calls[f"{row.owner}().{name}"] = row  # on an instance of the owner
    return table


_TABLE: Final = _build_table()

# Calls that take the elements of an iterable in its order, and those that do not care.
_ORDERED_CONSUMERS: Final = frozenset(
    f"builtins.{name}" for name in ("enumerate", "filter", "iter", "list", "map", "tuple", "zip")
)
_UNORDERED_CONSUMERS: Final = frozenset(
    f"builtins.{name}"
    for name in ("all", "any", "frozenset", "len", "max", "min", "set", "sorted", "sum")
)
_WORKFLOW_API: Final = "perdure.workflow."


def _shown(dotted: str) -> str:
    """How a user would name a dotted path: ``threading.Thread.start``, ``open``."""
    return dotted.replace("().", ".").removeprefix("builtins.")


def _described(node: ast.expr) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 40 else text[:37] + "..."


class FunctionChecker(ast.NodeVisitor):
    """Walks workflow code, collecting hits and the module-level functions it calls.

    Args:
        scope: the names the code sees.
    """

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.hits: list[Hit] = []
        self.helpers: set[str] = set()
        self._unordered: set[int] = set()  # ids of comprehensions whose order does not matter

    def check_body(self, body: list[ast.stmt]) -> None:
        for statement in body:
            self.visit(statement)

    # -- nested scopes

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if expr is not None:
                self.visit(expr)
        inner = Scope(self.scope)
        bind_arguments(inner, node.args, None)
        bind_statements(inner, node.body)
        outer, self.scope = self.scope, inner
        try:
            self.check_body(node.body)
        finally:
            self.scope = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expr in [*node.args.defaults, *node.args.kw_defaults]:
            if expr is not None:
                self.visit(expr)
        inner = Scope(self.scope)
        bind_arguments(inner, node.args, None)
        outer, self.scope = self.scope, inner
        try:
            self.visit(node.body)
        finally:
            self.scope = outer

    # -- calls and values

    def visit_Call(self, node: ast.Call) -> None:
        called = resolve(node.func, self.scope)
        if called is not None:
            if called.startswith(MODULE_PREFIX):
                self.helpers.add(called.removeprefix(MODULE_PREFIX))
            else:
                self._check_call(node, called)
            self._check_consumer(node, called)
        self._check_set_method(node)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._check_value(node)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self._check_value(node)

    def _check_call(self, node: ast.Call, called: str) -> None:
        row = _TABLE.calls.get(called)
        if row is None:
            parts = called.split(".")
            for end in range(len(parts) - 1, 0, -1):
                row = _TABLE.modules.get(".".join(parts[:end]))
                if row is not None:
                    break
        if row is None or (row.without_arguments and (node.args or node.keywords)):
            return
        self._hit(node, row.rule, f"{_shown(called)}() is not replay-safe")

    def _check_value(self, node: ast.Attribute | ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            return
        dotted = resolve(node, self.scope)
        row = None if dotted is None else _TABLE.values.get(dotted)
        if dotted is not None and row is not None:
            self._hit(node, row.rule, f"{_shown(dotted)} is not replay-safe")

    # -- iterating over sets

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self._check_iterated(node.iter)
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_Starred(self, node: ast.Starred) -> None:
        if isinstance(node.ctx, ast.Load):
            self._check_iterated(node.value)
        self.generic_visit(node)

    def visit_ListComp(self, node: ast.ListComp | ast.GeneratorExp | ast.DictComp) -> None:
        if id(node) not in self._unordered or self._has_effects(node):
            for generator in node.generators:
                self._check_iterated(generator.iter)
        self.generic_visit(node)

    visit_GeneratorExp = visit_ListComp
    visit_DictComp = visit_ListComp

    def visit_SetComp(self, node: ast.SetComp) -> None:
        # A set built from a set has no order to lose, unless building it does something.
        if self._has_effects(node):
            for generator in node.generators:
                self._check_iterated(generator.iter)
        self.generic_visit(node)

    def _check_consumer(self, node: ast.Call, called: str) -> None:
        if called in _UNORDERED_CONSUMERS:
            for argument in node.args:
                if isinstance(argument, ast.ListComp | ast.GeneratorExp):
                    self._unordered.add(id(argument))
        elif called in _ORDERED_CONSUMERS:
            for argument in node.args:
                self._check_iterated(argument)

    def _check_set_method(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute):
            return
        if func.attr == "join" and len(node.args) == 1:
            self._check_iterated(node.args[0])
        elif func.attr == "pop" and not node.args and is_set(resolve(func.value, self.scope)):
            self._hit(
                node,
                SET_ORDER,
                f"{_described(func.value)}.pop() removes an arbitrary element of a set, "
                "which is not replay-safe",
                "take min(...) or sorted(...)[0] and remove it instead",
            )

    def _check_iterated(self, node: ast.expr) -> None:
        if is_set(resolve(node, self.scope)):
            self._hit(
                node, SET_ORDER, f"iterating over the set {_described(node)} is not replay-safe"
            )

    def _has_effects(self, node: ast.expr) -> bool:
        """Whether evaluating ``node`` awaits or calls the workflow API (an activity, say)."""
        for child in ast.walk(node):
            if isinstance(child, ast.Await):
                return True
            if isinstance(child, ast.Call):
                called = resolve(child.func, self.scope) or ""
                if called.startswith((_WORKFLOW_API, MODULE_PREFIX)):
                    return True
        return False

    def _hit(self, node: ast.expr, rule: Rule, what: str, advice: str | None = None) -> None:
        message = f"{what}: {advice or rule.advice}"
        self.hits.append(Hit(node.lineno, node.col_offset, rule, message))
