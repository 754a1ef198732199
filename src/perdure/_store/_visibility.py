"""The rules for visibility: search attributes (typed, registered on first use, indexed as
rows) and list/count queries compiled from Temporal's filter language."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from perdure._errors import InvalidArgumentError, SearchAttributeTypeError
from perdure._store._schedule_state import SCHEDULED_BY_ID, SCHEDULED_START_TIME
from perdure._store._tx import Tx
from perdure._store._types import Execution
from perdure._store._visibility_driver import driver
from perdure._store._visibility_keys import ExecutionPage, page_token, token_key
from perdure._store._visibility_query import STATUS_NAMES, compile_query

# Search attributes a query may name before any run carries them (Temporal's system ones):
# the runs a schedule starts carry these two, and a query for a schedule's runs made before
# its first action finds none, rather than failing on a field no run has registered yet.
_SYSTEM_TYPES = {SCHEDULED_BY_ID: "Keyword", SCHEDULED_START_TIME: "Datetime"}


async def _query_types(tx: Tx, namespace: str) -> dict[str, str]:
    return {**_SYSTEM_TYPES, **await tx.search_attribute_types(namespace)}


Row = tuple[str | None, float | None, int | None]


def index_rows(entry: dict[str, Any]) -> list[Row]:
    """The index rows (text, number, bool) for one attribute's stored value."""
    kind = entry["type"]
    rows: list[Row] = []
    for value in entry["values"]:
        if kind in ("Keyword", "Text", "KeywordList"):
            rows.append((str(value), None, None))
        elif kind == "Bool":
            rows.append((None, None, int(bool(value))))
        elif kind == "Datetime":
            rows.append((None, datetime.fromisoformat(value).timestamp(), None))
        else:
            rows.append((None, float(value), None))
    return rows


async def set_attributes(tx: Tx, ex: Execution, updates: dict[str, Any]) -> None:
    """Apply updates (name -> stored value, or None to remove) to a run's search attributes.

    Raises:
        SearchAttributeTypeError: an attribute is already registered with another type.
    """
    if not updates:
        return
    registered = await tx.search_attribute_types(ex.namespace)
    current = dict(ex.search_attributes or {})
    rows: dict[str, list[Row]] = {}
    for name, entry in updates.items():
        if entry is None:
            current.pop(name, None)
            rows[name] = []
            continue
        known = registered.get(name)
        if known is None:
            await tx.register_search_attribute(ex.namespace, name, entry["type"])
            registered[name] = entry["type"]
        elif known != entry["type"]:
            raise SearchAttributeTypeError(
                f"Search attribute {name!r} is registered as {known} in namespace "
                f"{ex.namespace!r}; it cannot be set as {entry['type']}. Use "
                f"SearchAttributeKey.for_{_factory(known)}({name!r}), or another name."
            )
        current[name] = entry
        rows[name] = index_rows(entry)
    ex.search_attributes = current or None
    await tx.set_search_attributes(ex.run_id, rows)


def _factory(type_name: str) -> str:
    return {
        "Text": "text",
        "Keyword": "keyword",
        "Int": "int",
        "Double": "float",
        "Bool": "bool",
        "Datetime": "datetime",
        "KeywordList": "keyword_list",
    }[type_name]


async def list_executions(
    tx: Tx,
    namespace: str,
    query: str | None,
    dialect: str,
    page_size: int,
    next_page_token: bytes | None,
) -> ExecutionPage:
    """A page of the runs matching ``query``: the first, or the one after the token's.

    Raises:
        VisibilityQueryError: the query is malformed.
        InvalidArgumentError: the token belongs to another query, or ``page_size`` < 1.
    """
    if page_size < 1:
        raise InvalidArgumentError(f"page_size must be at least 1, got {page_size}")
    types = await _query_types(tx, namespace)
    sql: Any = dialect
    compiled = compile_query(query or "", types, dialect=sql, first_param_index=2)
    if next_page_token is not None:
        after = token_key(next_page_token, namespace, compiled.fingerprint, compiled.sort)
        compiled = compile_query(query or "", types, dialect=sql, first_param_index=2, after=after)
    among = driver(query, types) if dialect == "sqlite" and query else None
    # One row more than the page tells whether another page follows.
    rows = await tx.list_executions(
        namespace, compiled.where, compiled.params, compiled.order_by, page_size + 1, among
    )
    if len(rows) <= page_size:
        return ExecutionPage(rows, None)
    rows = rows[:page_size]
    token = page_token(namespace, compiled.fingerprint, compiled.sort, rows[-1])
    return ExecutionPage(rows, token)


async def count_executions(
    tx: Tx, namespace: str, query: str | None, dialect: str, max_count: int | None = None
) -> tuple[int, list[tuple[int, int]]]:
    """The number of runs matching ``query`` and, for ``GROUP BY ExecutionStatus``, the
    (status, count) of each status that has runs, in status order.

    With ``max_count``, each count stops at ``max_count`` (each group's, with ``GROUP BY``;
    the total is then their sum): a count of a million runs reads a million index entries,
    a capped one at most ``max_count`` per group.

    Raises:
        VisibilityQueryError: the query is malformed.
        InvalidArgumentError: ``max_count`` < 1.
    """
    if max_count is not None and max_count < 1:
        raise InvalidArgumentError(f"max_count must be at least 1, got {max_count}")
    sql: Any = dialect
    types = await _query_types(tx, namespace)
    compiled = compile_query(query or "", types, dialect=sql, first_param_index=2, for_count=True)
    among = driver(query, types) if dialect == "sqlite" and query else None
    if compiled.group_by is None:
        count = await tx.count_executions(
            namespace, compiled.where, compiled.params, max_count, among
        )
        return count, []
    if max_count is None:
        groups = await tx.count_executions_by(
            namespace, compiled.where, compiled.params, compiled.group_by, among
        )
        groups.sort()
        return sum(n for _, n in groups), groups
    # One capped count per status: each reads at most max_count entries of an index on
    # (namespace, status, ...).
    mark = "?" if dialect == "sqlite" else f"${len(compiled.params) + 2}"
    where = f"({compiled.where}) AND {compiled.group_by} = {mark}"
    groups = []
    for status in STATUS_NAMES:
        n = await tx.count_executions(
            namespace, where, [*compiled.params, status], max_count, among
        )
        if n:
            groups.append((status, n))
    return sum(n for _, n in groups), groups
