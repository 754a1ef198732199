"""What a name in the source stands for, as a dotted path: ``t.time`` is ``time.time``.

The linter resolves each expression it looks at to a dotted path, following imports and
their aliases (``import time as t``, ``from datetime import datetime``), and to a small
extent values: ``x = threading.Thread(...)`` makes ``x`` an instance, written
``threading.Thread()``, so that ``x.start`` resolves to ``threading.Thread().start``; a set
(a literal, a comprehension, ``set(...)``, an annotation ``set[str]``) resolves to
``builtins.set()``. A name bound by anything else (a parameter, a loop variable, two different
values) resolves to nothing, so local variables shadow the modules they are named after.

Resolution is lazy and memoized per scope; a value defined in terms of itself (``s = s | t``)
resolves to nothing rather than looping.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

SET: Final = "builtins.set()"
_SET_VALUES: Final = frozenset({SET, "builtins.frozenset()"})
_SET_TYPES: Final = frozenset(
    {
        "builtins.set",
        "builtins.frozenset",
        "typing.Set",
        "typing.FrozenSet",
        "typing.AbstractSet",
        "typing.MutableSet",
        "collections.abc.Set",
        "collections.abc.MutableSet",
    }
)
_SET_OPERATORS: Final = (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)
_SET_RETURNING_METHODS: Final = frozenset(
    {"copy", "difference", "intersection", "symmetric_difference", "union"}
)
MODULE_PREFIX: Final = "<module>."  # functions defined in the module being linted
_SELF_PREFIX: Final = "<self>"


@dataclass(frozen=True, slots=True)
class _Value:
    expr: ast.expr


@dataclass(frozen=True, slots=True)
class _Annotated:
    annotation: ast.expr


# How a name got its value: a known path (None: unknown), an expression to resolve in the
# scope that binds it, or an annotation whose instances it holds.
_Source = str | None | _Value | _Annotated


def is_set(value: str | None) -> bool:
    return value in _SET_VALUES


@dataclass(eq=False)
class ClassAttributes:
    """The values a workflow class gives its ``self.<name>`` attributes, by method."""

    sources: dict[str, list[tuple[Scope, _Source]]] = field(default_factory=dict)
    resolved: dict[str, str | None] = field(default_factory=dict)


class Scope:
    """The names one module or function binds, and what each stands for."""

    def __init__(self, parent: Scope | None, owner: ClassAttributes | None = None) -> None:
        self.parent = parent
        self.sources: dict[str, list[_Source]] = {}
        self._resolved: dict[str, str | None] = {}
        self._resolving: set[str] = set()
        self.self_attributes = owner  # set on a method scope: what its ``self`` holds

    def bind(self, name: str, source: _Source) -> None:
        self.sources.setdefault(name, []).append(source)

    def lookup(self, name: str) -> str | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.sources:
                return scope._value(name)
            scope = scope.parent
        return f"builtins.{name}" if hasattr(builtins, name) else None

    def _value(self, name: str) -> str | None:
        if name in self._resolved:
            return self._resolved[name]
        if name in self._resolving:
            return None
        self._resolving.add(name)
        try:
            values = {_evaluate(source, self) for source in self.sources[name]}
        finally:
            self._resolving.discard(name)
        value = values.pop() if len(values) == 1 else None
        self._resolved[name] = value
        return value


def _evaluate(source: _Source, scope: Scope) -> str | None:
    if isinstance(source, _Value):
        value = resolve(source.expr, scope)
        # A value is known only as an instance or a module-level function, not as an alias
        # of a module function (``f = time.time`` is left alone, like any other callable).
        return value if value is not None and (value.endswith("()") or value == SET) else None
    if isinstance(source, _Annotated):
        return annotation_instance(source.annotation, scope)
    return source


def resolve(node: ast.expr, scope: Scope) -> str | None:
    """The dotted path ``node`` stands for, or None if it cannot be told statically."""
    if isinstance(node, ast.Name):
        return scope.lookup(node.id)
    if isinstance(node, ast.Attribute):
        base = resolve(node.value, scope)
        if base is None:
            return None
        if base.startswith(_SELF_PREFIX):
            return _self_attribute(node.attr, scope)
        return f"{base}.{node.attr}"
    if isinstance(node, ast.Call):
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in _SET_RETURNING_METHODS
            and is_set(resolve(func.value, scope))
        ):
            return SET
        called = resolve(func, scope)
        return None if called is None or called.startswith(_SELF_PREFIX) else f"{called}()"
    if isinstance(node, ast.Set | ast.SetComp):
        return SET
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, _SET_OPERATORS)
        and (is_set(resolve(node.left, scope)) or is_set(resolve(node.right, scope)))
    ):
        return SET
    return None


def annotation_instance(annotation: ast.expr, scope: Scope) -> str | None:
    """What a value annotated with ``annotation`` is: ``set[str]`` holds ``builtins.set()``."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(annotation, ast.Subscript):
        annotation = annotation.value
    if not isinstance(annotation, ast.Name | ast.Attribute):
        return None
    kind = resolve(annotation, scope)
    if kind is None or kind.endswith("()") or kind.startswith(MODULE_PREFIX):
        return None
    return SET if kind in _SET_TYPES else f"{kind}()"


def _self_attribute(name: str, scope: Scope) -> str | None:
    owner: Scope | None = scope
    while owner is not None and owner.self_attributes is None:
        owner = owner.parent
    if owner is None or owner.self_attributes is None:
        return None
    attributes = owner.self_attributes
    if name in attributes.resolved:
        return attributes.resolved[name]
    attributes.resolved[name] = None  # a guard while resolving: self.x = self.x | y
    values = {_evaluate(source, where) for where, source in attributes.sources.get(name, ())}
    value = values.pop() if len(values) == 1 else None
    attributes.resolved[name] = value
    return value


# -- binding ---------------------------------------------------------------------------------


def statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of one scope, in order, without those of the scopes nested in it."""
    for statement in body:
        yield statement
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from statements(getattr(statement, name, []))
        for handler in getattr(statement, "handlers", []):
            yield from statements(handler.body)
        for case in getattr(statement, "cases", []):
            yield from statements(case.body)


def bind_statements(scope: Scope, body: list[ast.stmt], module: bool = False) -> None:
    """Record what each statement of one scope binds; ``module``: the module's own scope."""
    for statement in statements(body):
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname is None:
                    top = alias.name.partition(".")[0]
                    scope.bind(top, top)
                else:
                    scope.bind(alias.asname, alias.name)
        elif isinstance(statement, ast.ImportFrom):
            for alias in statement.names:
                if alias.name == "*":
                    continue
                dotted = None if statement.level else f"{statement.module}.{alias.name}"
                scope.bind(alias.asname or alias.name, dotted)
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            scope.bind(statement.name, MODULE_PREFIX + statement.name if module else None)
        elif isinstance(statement, ast.Assign):
            single = len(statement.targets) == 1
            for target in statement.targets:
                _bind_target(scope, target, statement.value if single else None)
        elif isinstance(statement, ast.AnnAssign):
            if isinstance(statement.target, ast.Name):
                scope.bind(statement.target.id, _Annotated(statement.annotation))
        elif isinstance(statement, ast.AugAssign):
            pass  # s |= {x} keeps a set a set; n += 1 keeps an unknown unknown
        elif isinstance(statement, ast.For | ast.AsyncFor):
            _bind_target(scope, statement.target, None)
        elif isinstance(statement, ast.With | ast.AsyncWith):
            for item in statement.items:
                if item.optional_vars is not None:
                    _bind_target(scope, item.optional_vars, item.context_expr)
        elif isinstance(statement, ast.Try | ast.TryStar):
            for handler in statement.handlers:
                if handler.name:
                    scope.bind(handler.name, None)
        elif isinstance(statement, ast.Global | ast.Nonlocal | ast.Delete):
            for name in getattr(statement, "names", ()):
                scope.bind(name, None)
    # Names bound inside expressions (walrus, match captures, comprehension variables)
    # shadow too; comprehension variables only within their comprehension, but treating
    # them as the scope's costs nothing but a missed finding.
    for statement in statements(body):
        for node in _own_nodes(statement):
            if isinstance(node, ast.NamedExpr):
                scope.bind(node.target.id, None)
            elif isinstance(node, ast.comprehension):
                _bind_target(scope, node.target, None)
            elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
                scope.bind(node.name, None)


def bind_arguments(scope: Scope, arguments: ast.arguments, self_name: str | None) -> None:
    """Bind parameters: ``self_name`` holds the workflow instance, others their annotation."""
    every = [
        *arguments.posonlyargs,
        *arguments.args,
        *arguments.kwonlyargs,
        *([arguments.vararg] if arguments.vararg else []),
        *([arguments.kwarg] if arguments.kwarg else []),
    ]
    for argument in every:
        if argument.arg == self_name:
            scope.bind(argument.arg, _SELF_PREFIX)
        elif argument.annotation is not None and argument not in (
            arguments.vararg,
            arguments.kwarg,
        ):
            scope.bind(argument.arg, _Annotated(argument.annotation))
        else:
            scope.bind(argument.arg, None)


def bind_self_attributes(attributes: ClassAttributes, scope: Scope, body: list[ast.stmt]) -> None:
    """Record the ``self.<name> = value`` assignments of one method."""
    for statement in statements(body):
        targets: list[ast.expr] = []
        source: _Source = None
        if isinstance(statement, ast.Assign):
            targets = statement.targets
            if len(targets) == 1:
                source = _Value(statement.value)
        elif isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
            source = _Annotated(statement.annotation)
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and (resolve(target.value, scope) or "").startswith(_SELF_PREFIX)
            ):
                attributes.sources.setdefault(target.attr, []).append((scope, source))


def bind_class_body(attributes: ClassAttributes, scope: Scope, body: list[ast.stmt]) -> None:
    """Record the class-level annotations (``pending: set[str]``) of a workflow class."""
    for statement in body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            attributes.sources.setdefault(statement.target.id, []).append(
                (scope, _Annotated(statement.annotation))
            )


def _bind_target(scope: Scope, target: ast.expr, value: ast.expr | None) -> None:
    if isinstance(target, ast.Name):
        scope.bind(target.id, None if value is None else _Value(value))
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            _bind_target(scope, element, None)
    elif isinstance(target, ast.Starred):
        _bind_target(scope, target.value, None)


def _own_nodes(statement: ast.stmt) -> Iterator[ast.AST]:
    """The expression nodes of one statement, not entering nested scopes or statements."""
    pending: list[ast.AST] = [
        child for child in ast.iter_child_nodes(statement) if not isinstance(child, ast.stmt)
    ]
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))
