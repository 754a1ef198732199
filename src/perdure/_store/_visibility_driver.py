"""Reading a listing from a custom search attribute's index, on SQLite.

A query such as ``CustomerId = 'c-42'`` matches a few runs among a million. Its compiled
form tests each run (``EXISTS`` over the run's attribute rows) while reading runs in the
listing's order, which finds a common value at once but reads every run to find a rare one.
PostgreSQL's planner, which keeps statistics, chooses between reading the runs in order and
starting from the attribute's index; SQLite, which perdure gives no statistics, always reads
in order. So on SQLite the store asks the attribute's index how many rows hold the value
(at most :data:`DRIVER_LIMIT` are counted) and, when few do, reads just those runs and
sorts them (:func:`driver`).

The condition taken is one that every matching run satisfies: a positive condition (``=``,
``<``, ``IN``, ``BETWEEN``, ``STARTS_WITH``...) on a custom attribute that is the query's
filter or one of the terms of its top-level ``AND``. Adding "the run is among those the
index finds" to the filter then changes nothing in the result, only where SQLite starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perdure._store._visibility_parse import (
    And,
    Between,
    Comparison,
    Expr,
    In,
    StartsWith,
    parse_query,
)
from perdure._store._visibility_query import _BUILTINS, _SA_COLUMN, _Compiler, _convert

DRIVER_LIMIT = 5000
"""The most attribute rows a listing reads from the attribute's index (and then sorts)."""


@dataclass(frozen=True)
class Driver:
    """A condition on ``search_attributes sa`` that every run the query matches satisfies.

    Attributes:
        where: SQL over ``search_attributes sa`` (SQLite placeholders).
        params: its bind parameters.
    """

    where: str
    params: list[Any]


def driver(query: str, search_attribute_types: Mapping[str, str]) -> Driver | None:
    """The first positive custom-attribute condition among the query's top-level terms, as
    SQLite SQL over ``search_attributes sa``, or ``None`` if it has none. The query has
    compiled already (it is valid)."""
    parsed = parse_query(query)
    terms: list[Expr] = []
    pending = [parsed.where] if parsed.where is not None else []
    while pending:
        node = pending.pop(0)
        if isinstance(node, And):
            pending = [*node.operands, *pending]
        else:
            terms.append(node)
    for node in terms:
        if _positive(node):
            found = _on_attribute(query, search_attribute_types, node)
            if found is not None:
                return found
    return None


def _on_attribute(query: str, types: Mapping[str, str], node: Expr) -> Driver | None:
    assert isinstance(node, Comparison | In | Between | StartsWith)
    name = node.field.name
    if name in _BUILTINS or name not in types:
        return None
    type_ = types[name]
    compiler = _Compiler(query, types, "sqlite", 1)
    where = f"sa.name = {compiler.bind(name)} AND " + compiler.condition(
        f"sa.{_SA_COLUMN[type_]}", node, lambda v: _convert(query, name, type_, v)
    )
    return Driver(where, compiler.params)


def _positive(node: Expr) -> bool:
    if isinstance(node, Comparison):
        return node.op != "!="
    if isinstance(node, In | Between | StartsWith):
        return not node.negated
    return False
