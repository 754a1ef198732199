"""``list_schedules(query)``: the visibility language, evaluated on schedules.

A namespace holds few schedules, so the filter is parsed by the visibility parser and
evaluated in Python on each schedule's fields: ``ScheduleId``, ``WorkflowType``,
``TemporalSchedulePaused`` and the schedule's own search attributes (a keyword list
matches when one of its values does, as in Temporal).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from perdure._store._schedule_state import ScheduleRow
from perdure._store._visibility_lex import VisibilityQueryError
from perdure._store._visibility_parse import (
    And,
    Between,
    Comparison,
    Expr,
    In,
    IsNull,
    Not,
    Or,
    StartsWith,
    Value,
    parse_query,
)

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def schedule_filter(query: str | None) -> Callable[[ScheduleRow], bool]:
    """A predicate on schedules for ``query`` (every schedule for None or blank).

    Raises:
        VisibilityQueryError: the query is malformed, or orders (schedules list by id).
    """
    parsed = parse_query(query or "")
    if parsed.order_by:
        raise VisibilityQueryError(
            query or "", 0, "schedules are listed by id: ORDER BY is not supported"
        )
    where = parsed.where
    if where is None:
        return lambda row: True
    return lambda row: _holds(where, _fields(row))


def _fields(row: ScheduleRow) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {
        "ScheduleId": [row.schedule_id],
        "WorkflowType": [row.action.workflow_type],
        "TemporalSchedulePaused": [row.paused],
    }
    for name, entry in (row.search_attributes or {}).items():
        values = list(entry["values"])
        if entry["type"] == "Datetime":
            values = [datetime.fromisoformat(v).timestamp() for v in values]
        out[name] = values
    return out


def _literal(value: Value) -> Any:
    v = value.value
    if isinstance(v, str):
        try:  # a time, compared as epoch seconds like a Datetime attribute
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return v
    return v


def _any(values: list[Any], test: Callable[[Any], bool]) -> bool:
    for v in values:
        try:
            if test(v):
                return True
        except TypeError:  # a value of another type never matches
            continue
    return False


def _holds(node: Expr, fields: dict[str, list[Any]]) -> bool:
    if isinstance(node, And):
        return all(_holds(o, fields) for o in node.operands)
    if isinstance(node, Or):
        return any(_holds(o, fields) for o in node.operands)
    if isinstance(node, Not):
        return not _holds(node.operand, fields)
    values = fields.get(node.field.name, [])
    if isinstance(node, IsNull):
        return bool(values) == node.negated
    if isinstance(node, Comparison):
        raw, converted = node.value.value, _literal(node.value)
        op = _OPS[node.op]
        return _any(values, lambda v: op(v, converted if not isinstance(v, str) else raw))
    if isinstance(node, In):
        wanted = {v.value for v in node.values}
        return _any(values, lambda v: v in wanted) != node.negated
    if isinstance(node, Between):
        low, high = _literal(node.low), _literal(node.high)
        return _any(values, lambda v: low <= v <= high) != node.negated
    if isinstance(node, StartsWith):
        prefix = str(node.prefix.value)
        return _any(values, lambda v: isinstance(v, str) and v.startswith(prefix)) != (node.negated)
    raise TypeError(f"Not a condition: {node!r}")
