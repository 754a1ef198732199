"""Temporal's visibility list filter, compiled to SQL with bind parameters.

``client.list_workflows(query)`` and ``count_workflows(query)`` take a filter in the language
Temporal's SQL visibility stores accept (its grammar is in
:mod:`perdure._store._visibility_parse`, which parses it). This module checks the parsed query
against the built-in fields and the custom search attributes' types and turns it into a
``WHERE`` / ``ORDER BY`` pair for SQLite or PostgreSQL (:func:`compile_query`). It does no
I/O; values only ever travel as bind parameters. The parser's names are re-exported here.

Semantics, where a choice had to be made:

* Logic is two-valued: a condition on a field that is not set (``CloseTime`` of an open run,
  a custom attribute the run does not have) is false, never SQL's unknown. So ``!=``,
  ``NOT IN`` and ``NOT BETWEEN`` match runs whose field is set and differs (Temporal's rule),
  while ``NOT (X = 'a')`` matches every run ``X = 'a'`` does not, unset ones included.
* ``KeywordList = 'x'`` means the list contains ``'x'``; ``IN`` means it contains any of the
  values; ``!=`` / ``NOT IN`` mean the list is set and contains none of them.
* ``STARTS_WITH`` is case-sensitive on both databases: on SQLite it is the range of strings
  from the prefix up to the next one in byte order (which an index finds; SQLite's ``LIKE``
  ignores ASCII case), on PostgreSQL a ``LIKE 'prefix%'``.
* Datetimes are ISO 8601 strings; one without a zone is UTC. They compare as epoch seconds.
* ``ORDER BY`` takes built-in fields only; ``e.run_id`` is appended as a tie-breaker, in the
  direction of the last term, so that the order is total and pages are stable; runs without a
  ``CloseTime`` sort last in either direction.
* Pages are read by key (:func:`compile_query`'s ``after``): the next page is the rows strictly
  after the last row's sort key, so rows inserted while a listing pages through do not shift
  the pages (as ``OFFSET`` would).
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

from perdure._store._visibility_keys import SortKey, rows_after
from perdure._store._visibility_parse import (
    And,
    Between,
    Comparison,
    Expr,
    FieldRef,
    In,
    IsNull,
    Not,
    Or,
    OrderTerm,
    Query,
    StartsWith,
    Value,
    VisibilityQueryError,
    parse_query,
)

__all__ = [
    "BUILTIN_FIELDS",
    "SEARCH_ATTRIBUTE_TYPES",
    "STATUS_NAMES",
    "And",
    "Between",
    "Comparison",
    "CompiledQuery",
    "Expr",
    "FieldRef",
    "In",
    "IsNull",
    "Not",
    "Or",
    "OrderTerm",
    "Query",
    "SortKey",
    "StartsWith",
    "Value",
    "VisibilityQueryError",
    "compile_query",
    "parse_query",
]


# --- fields and types ---------------------------------------------------------------------

SEARCH_ATTRIBUTE_TYPES = frozenset(
    {"Keyword", "Text", "Int", "Double", "Bool", "Datetime", "KeywordList"}
)
"""The types a custom search attribute may have."""

_STATUS = "ExecutionStatus"  # the pseudo-type of the ExecutionStatus field
_STATUS_NAMES = (
    "Running",
    "Completed",
    "Failed",
    "Canceled",
    "Terminated",
    "ContinuedAsNew",
    "TimedOut",
)
_STATUS_VALUES = {name.lower(): i for i, name in enumerate(_STATUS_NAMES, start=1)}
STATUS_NAMES: Mapping[int, str] = dict(enumerate(_STATUS_NAMES, start=1))
"""``ExecutionStatus`` values as the query language names them (``1`` is ``'Running'``)."""


@dataclass(frozen=True)
class _Builtin:
    type: str
    column: str
    nullable: bool = False


_BUILTINS = {
    "WorkflowId": _Builtin("Keyword", "e.workflow_id"),
    "WorkflowType": _Builtin("Keyword", "e.workflow_type"),
    "RunId": _Builtin("Keyword", "e.run_id"),
    "ExecutionStatus": _Builtin(_STATUS, "e.status"),
    "StartTime": _Builtin("Datetime", "e.start_time"),
    "CloseTime": _Builtin("Datetime", "e.close_time", nullable=True),
    "ExecutionTime": _Builtin("Datetime", "e.start_time"),  # no delayed starts yet
    "TaskQueue": _Builtin("Keyword", "e.task_queue"),
    "HistoryLength": _Builtin("Int", "(e.next_event_id - 1)"),
}

BUILTIN_FIELDS: Mapping[str, str] = {name: field.type for name, field in _BUILTINS.items()}
"""The built-in fields and their types (``ExecutionStatus`` has a type of its own)."""

_ORDERED = frozenset({"Keyword", "Text", "Int", "Double", "Datetime"})
_PREFIXED = frozenset({"Keyword", "Text"})
_SA_COLUMN = {
    "Keyword": "value_text",
    "Text": "value_text",
    "KeywordList": "value_text",
    "Int": "value_num",
    "Double": "value_num",
    "Datetime": "value_num",
    "Bool": "value_bool",
}


def _convert(query: str, field: str, type_: str, value: Value) -> Any:
    """The bind parameter for ``value`` compared with a field of ``type_``."""
    v = value.value

    def wrong(expected: str) -> VisibilityQueryError:
        return VisibilityQueryError(
            query, value.pos, f"{field} ({type_}) needs {expected}, got {_show(v)}"
        )

    if type_ == _STATUS:
        if isinstance(v, str) and v.lower() in _STATUS_VALUES:
            return _STATUS_VALUES[v.lower()]
        raise wrong(f"one of {', '.join(_STATUS_NAMES)}")
    if type_ in ("Keyword", "Text", "KeywordList"):
        if isinstance(v, str):
            return v
        raise wrong("a quoted string")
    if type_ == "Bool":
        if isinstance(v, bool):
            return int(v)
        raise wrong("true or false")
    if type_ == "Int":
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        raise wrong("an integer")
    if type_ == "Double":
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
        raise wrong("a number")
    # Datetime
    if isinstance(v, str):
        try:
            moment = datetime.fromisoformat(v)
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    raise wrong("an ISO 8601 datetime string such as '2026-01-01T00:00:00Z'")


def _prefix_end(prefix: str) -> str | None:
    """The least string after every string that starts with ``prefix`` (in code point
    order, which is UTF-8's byte order), or ``None`` if there is none (an empty prefix)."""
    chars = list(prefix)
    while chars:
        after = ord(chars.pop()) + 1
        if 0xD800 <= after <= 0xDFFF:  # surrogates are not characters of a stored string
            after = 0xE000
        if after <= 0x10FFFF:
            return "".join(chars) + chr(after)
    return None


def _show(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


# --- compiler -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledQuery:
    """SQL fragments over ``executions e`` (and ``search_attributes``) with their parameters.

    Attributes:
        where: a boolean SQL expression to put after ``WHERE`` (``TRUE`` matches all); with
            ``after=``, it also holds only the rows past that key.
        params: the bind parameters of ``where``, in placeholder order.
        sort: the order, a total one (its last key is ``RunId``).
        fingerprint: identifies what the query means (not how it is spaced or cased), so a
            page token can be checked against the query it is used with.
        group_by: the column of ``GROUP BY ExecutionStatus`` (counts only), or ``None``.
    """

    where: str
    params: list[Any]
    sort: tuple[SortKey, ...]
    fingerprint: str
    group_by: str | None = None

    @property
    def order_by(self) -> str:
        """The expression list to put after ``ORDER BY``."""
        return ", ".join(key.sql for key in self.sort)


_Pred: TypeAlias = Comparison | In | Between | StartsWith | IsNull


def _operands(node: And | Or) -> list[Expr]:
    """The operands of an AND (or OR), with those of the ANDs (ORs) among them merged in,
    and the nested ones first.

    Before version 3.46, SQLite's parser has a stack of 100 entries, and holds on it every
    operand written before a parenthesized one: nested groups written last overflow it
    after a dozen levels, written first after about forty. The order of operands changes
    nothing else: the logic is two-valued and the parameters are bound in text order.
    """
    merged: list[Expr] = []
    for op in node.operands:
        if type(op) is type(node):
            merged.extend(_operands(op))
        else:
            merged.append(op)
    return sorted(merged, key=lambda op: not _nested(op))


def _nested(node: Expr) -> bool:
    while isinstance(node, Not):
        node = node.operand
    return isinstance(node, And | Or)


class _Compiler:
    def __init__(
        self,
        query: str,
        sa_types: Mapping[str, str],
        dialect: Literal["sqlite", "postgresql"],
        first_param_index: int,
    ) -> None:
        self.query = query
        self.sa_types = sa_types
        self.dialect = dialect
        self.params: list[Any] = []
        self.first = first_param_index

    def bind(self, value: Any) -> str:
        # Placeholders are made in text order, so ``?`` and ``$n`` both line up with params.
        self.params.append(value)
        return "?" if self.dialect == "sqlite" else f"${self.first + len(self.params) - 1}"

    def error(self, pos: int, reason: str) -> VisibilityQueryError:
        return VisibilityQueryError(self.query, pos, reason)

    def field_type(self, field: FieldRef) -> str:
        if field.name in _BUILTINS:
            return _BUILTINS[field.name].type
        if field.name in self.sa_types:
            return self.sa_types[field.name]
        custom = ", ".join(sorted(self.sa_types)) or "none"
        reason = f"unknown field {field.name!r} (known: {', '.join(_BUILTINS)}; custom: {custom})"
        close = difflib.get_close_matches(field.name, [*_BUILTINS, *self.sa_types], n=1)
        if close:
            reason += f"; did you mean {close[0]!r}?"
        raise self.error(field.pos, reason)

    def expr(self, node: Expr) -> str:
        if isinstance(node, And | Or):
            joiner = " AND " if isinstance(node, And) else " OR "
            return "(" + joiner.join(self.expr(op) for op in _operands(node)) + ")"
        if isinstance(node, Not):
            if isinstance(node.operand, Not):  # the logic is two-valued: NOT NOT x is x
                return self.expr(node.operand.operand)
            inner = self.expr(node.operand)
            return f"NOT {inner}" if isinstance(node.operand, And | Or) else f"NOT ({inner})"
        return self.predicate(node)

    def predicate(self, node: _Pred) -> str:
        field = node.field
        type_ = self.field_type(field)
        self.check_operator(node, type_)

        def convert(value: Value) -> Any:
            return _convert(self.query, field.name, type_, value)

        builtin = _BUILTINS.get(field.name)
        if builtin is None:
            if _SA_COLUMN[type_] == "value_num":  # a REAL column: one parameter type for all
                return self.custom(node, type_, lambda value: float(convert(value)))
            return self.custom(node, type_, convert)
        col = builtin.column
        if isinstance(node, IsNull):
            return f"{col} IS {'NOT ' if node.negated else ''}NULL"
        cond = self.condition(col, node, convert)
        # A NULL column makes the condition false rather than unknown, so NOT stays a negation.
        return f"({col} IS NOT NULL AND {cond})" if builtin.nullable else cond

    def condition(self, col: str, node: _Pred, convert: Callable[[Value], Any]) -> str:
        """``col`` tested against ``node``'s values, binding them in text order."""
        if isinstance(node, Comparison):
            op = "<>" if node.op == "!=" else node.op
            return f"{col} {op} {self.bind(convert(node.value))}"
        if isinstance(node, In):
            marks = ", ".join(self.bind(convert(v)) for v in node.values)
            return f"{col} {'NOT ' if node.negated else ''}IN ({marks})"
        if isinstance(node, Between):
            low = self.bind(convert(node.low))
            high = self.bind(convert(node.high))
            return f"{col} {'NOT ' if node.negated else ''}BETWEEN {low} AND {high}"
        if isinstance(node, StartsWith):
            prefix = convert(node.prefix)
            end = _prefix_end(prefix)
            if self.dialect == "sqlite" and end is not None:
                # The strings with this prefix are a range in byte order (SQLite's, for
                # TEXT), which an index on the column finds; LIKE, which ignores ASCII case,
                # would scan.
                sql = f"({col} >= {self.bind(prefix)} AND {col} < {self.bind(end)})"
                return f"NOT {sql}" if node.negated else sql
            pattern = re.sub(r"([\\%_])", r"\\\1", prefix) + "%"
            sql = f"{col} LIKE {self.bind(pattern)} ESCAPE '\\'"
            if self.dialect == "sqlite":  # SQLite's LIKE ignores ASCII case; make it exact
                sql = (
                    f"({sql} AND substr({col}, 1, {self.bind(len(prefix))}) = {self.bind(prefix)})"
                )
            return f"NOT {sql}" if node.negated else sql
        raise TypeError(f"not a condition: {node!r}")  # IsNull is handled by the callers

    def custom(self, node: _Pred, type_: str, convert: Callable[[Value], Any]) -> str:
        name = node.field.name
        col = f"sa.{_SA_COLUMN[type_]}"

        def exists(make_cond: Callable[[], str] | None = None) -> str:
            where = f"sa.run_id = e.run_id AND sa.name = {self.bind(name)}"
            if make_cond is not None:
                where += f" AND {make_cond()}"  # after the name, so placeholders stay in order
            return f"EXISTS (SELECT 1 FROM search_attributes sa WHERE {where})"

        if isinstance(node, IsNull):
            return exists() if node.negated else f"NOT {exists()}"
        positive: In | None = None  # a list "differs" when it is set and holds none of them
        if type_ == "KeywordList" and isinstance(node, Comparison) and node.op == "!=":
            positive = In(node.field, (node.value,), False, node.pos)
        elif type_ == "KeywordList" and isinstance(node, In) and node.negated:
            positive = In(node.field, node.values, False, node.pos)
        if positive is not None:
            contains = positive
            return f"({exists()} AND NOT {exists(lambda: self.condition(col, contains, convert))})"
        return exists(lambda: self.condition(col, node, convert))

    def check_operator(self, node: _Pred, type_: str) -> None:
        if isinstance(node, IsNull | In):
            return
        if isinstance(node, Comparison):
            op = node.op
            if op in ("=", "!=") or type_ in _ORDERED:
                return
        elif isinstance(node, Between):
            op = "BETWEEN"
            if type_ in _ORDERED:
                return
        else:
            op = "STARTS_WITH"
            if type_ in _PREFIXED:
                return
        allowed = "=, !=, IN, NOT IN, IS NULL"
        if type_ in _ORDERED:
            allowed = "=, !=, <, <=, >, >=, IN, NOT IN, BETWEEN, IS NULL"
        raise self.error(
            node.pos,
            f"operator {op} is not allowed on {node.field.name} ({type_}); use {allowed}",
        )

    def sort(self, terms: tuple[OrderTerm, ...]) -> tuple[SortKey, ...]:
        keys: list[SortKey] = []
        for term in terms:
            builtin = _BUILTINS.get(term.field.name)
            if builtin is None:
                self.field_type(term.field)  # raises for an unknown field
                raise self.error(
                    term.field.pos,
                    f"ORDER BY supports built-in fields only ({', '.join(_BUILTINS)}); "
                    f"{term.field.name!r} is a custom search attribute",
                )
            kind = _KEY_KINDS[builtin.type]
            keys.append(
                SortKey(term.field.name, builtin.column, term.descending, builtin.nullable, kind)
            )
        if not keys:
            keys.append(SortKey("StartTime", "e.start_time", True, False, "float"))
        if all(key.field != "RunId" for key in keys):
            # In the last term's direction, so that one index serves the whole order.
            keys.append(SortKey("RunId", "e.run_id", keys[-1].descending, False, "str"))
        return tuple(keys)


# The Python type of a sort key's values, by the field's type.
_KEY_KINDS = {"Keyword": "str", "Datetime": "float", "Int": "int", _STATUS: "int"}


def compile_query(
    query: str,
    search_attribute_types: Mapping[str, str],
    *,
    dialect: Literal["sqlite", "postgresql"],
    first_param_index: int = 1,
    after: Sequence[Any] | None = None,
    for_count: bool = False,
) -> CompiledQuery:
    """Compile a visibility query to SQL over ``executions e`` and ``search_attributes``.

    Args:
        query: the filter, e.g. ``"WorkflowType = 'Order' AND StartTime > '2026-01-01'"``.
        search_attribute_types: custom search attribute name → type, one of
            :data:`SEARCH_ATTRIBUTE_TYPES`.
        dialect: ``"sqlite"`` (``?`` placeholders) or ``"postgresql"`` (``$1, $2, ...``).
        first_param_index: the number of the first ``$n`` placeholder, so the caller can put
            its own parameters first (ignored for SQLite).
        after: the sort key of the last row of the previous page (one value for each of the
            result's ``sort`` keys): ``where`` then holds only the rows after it.
        for_count: the query counts runs, so it may end in ``GROUP BY ExecutionStatus``.

    Returns:
        The ``WHERE`` expression, its parameters and the order.

    Raises:
        VisibilityQueryError: the query is malformed, names an unknown field, uses an operator
            the field's type does not allow, has a value of the wrong type, or groups a
            listing (or by another field than ``ExecutionStatus``).
        ValueError: ``search_attribute_types``, ``dialect`` or ``after`` is invalid (a
            caller's bug).

    Example::

        >>> c = compile_query("CustomerTier = 'gold'", {"CustomerTier": "Keyword"},
        ...                   dialect="sqlite")
        >>> c.params
        ['CustomerTier', 'gold']
    """
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"unknown SQL dialect {dialect!r}; use 'sqlite' or 'postgresql'")
    for name, type_ in search_attribute_types.items():
        if name in _BUILTINS:
            raise ValueError(f"custom search attribute {name!r} shadows a built-in field")
        if type_ not in SEARCH_ATTRIBUTE_TYPES:
            raise ValueError(
                f"search attribute {name!r} has unknown type {type_!r}; "
                f"use one of {', '.join(sorted(SEARCH_ATTRIBUTE_TYPES))}"
            )
    parsed = parse_query(query)
    compiler = _Compiler(query, search_attribute_types, dialect, first_param_index)
    where = "TRUE" if parsed.where is None else compiler.expr(parsed.where)
    sort = compiler.sort(parsed.order_by)
    if after is not None:
        if len(after) != len(sort):
            raise ValueError(f"a key of {len(sort)} values is needed, got {len(after)}")
        where = f"({where}) AND {rows_after(sort, after, compiler.bind)}"
    group_by = None
    if parsed.group_by is not None:
        field = parsed.group_by
        if not for_count:
            raise compiler.error(field.pos, "GROUP BY is for count_workflows only")
        if field.name != "ExecutionStatus":
            compiler.field_type(field)  # raises for an unknown field
            raise compiler.error(field.pos, "GROUP BY supports ExecutionStatus only")
        group_by = _BUILTINS[field.name].column
    # The AST's repr leaves out positions: the same query however it is spaced or cased.
    fingerprint = hashlib.sha256(repr(parsed).encode()).hexdigest()[:16]
    return CompiledQuery(where, compiler.params, sort, fingerprint, group_by)
