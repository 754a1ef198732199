"""Keyset paging for listings: a page is the rows strictly after the previous page's last
row in the listing's order, never an ``OFFSET``.

An ``OFFSET`` page costs the rows it skips, and a row inserted (or deleted) ahead of it
shifts every later page by one, so a listing that pages while workflows start shows a row
twice or never. A key instead names a place in the order: the next page starts after it
whatever was inserted meanwhile, and is found by an index seek however deep it is.

The order is total (``RunId`` breaks ties, see :mod:`perdure._store._visibility_query`), so
"after this key" is well defined: a row that existed when paging began and whose sort key
does not change (``StartTime`` and ``RunId``, the default order, never do) is listed
exactly once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from perdure._errors import InvalidArgumentError
from perdure._store._types import Execution


@dataclass(frozen=True)
class SortKey:
    """One column of a listing's order.

    Attributes:
        field: the built-in field (``RunId`` for the tie-breaker).
        column: its SQL expression over ``executions e``.
        descending: sorted high to low.
        nullable: may be NULL (such rows sort last in either direction).
        kind: the Python type of its values: ``"str"``, ``"int"`` or ``"float"``.
    """

    field: str
    column: str
    descending: bool
    nullable: bool
    kind: str

    @property
    def sql(self) -> str:
        """The ``ORDER BY`` term."""
        direction = "DESC" if self.descending else "ASC"
        return f"{self.column} {direction}" + (" NULLS LAST" if self.nullable else "")


def rows_after(sort: Sequence[SortKey], values: Sequence[Any], bind: Callable[[Any], str]) -> str:
    """SQL that holds for the rows strictly after the row whose sort key is ``values``.

    ``bind`` makes a placeholder for a value; it is called in the order the placeholders
    appear in the text. The first key's bound is stated on its own as well, so that an index
    on it is scanned from there (a seek, not a scan of what comes before); the disjunction
    then steps over the rows that tie with the last row.
    """
    first, value = sort[0], values[0]
    if value is None:  # only rows without a value can follow: NULLs sort last
        bound = f"{first.column} IS NULL"
    else:
        bound = f"{first.column} {'<=' if first.descending else '>='} {bind(value)}"
        if first.nullable:
            bound = f"({first.column} IS NULL OR {bound})"
    branches: list[str] = []
    for i, key in enumerate(sort):
        if values[i] is None:
            continue  # nothing sorts after NULL in this column
        ties = [_equal(k, v, bind) for k, v in zip(sort[:i], values[:i], strict=True)]
        beyond = f"{key.column} {'<' if key.descending else '>'} {bind(values[i])}"
        if key.nullable:
            beyond = f"({key.column} IS NULL OR {beyond})"
        branches.append(" AND ".join([*ties, beyond]))
    return f"{bound} AND ({' OR '.join(branches) or 'FALSE'})"


def _equal(key: SortKey, value: Any, bind: Callable[[Any], str]) -> str:
    return f"{key.column} IS NULL" if value is None else f"{key.column} = {bind(value)}"


# --- page tokens --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionPage:
    """One page of a listing.

    Attributes:
        executions: the page's runs, in the listing's order.
        next_page_token: where the next page starts, or ``None`` after the last page.
    """

    executions: list[Execution]
    next_page_token: bytes | None


_TOKEN_VERSION = 1

# A run's value of each built-in field that can be sorted on.
_ROW_KEY: dict[str, Callable[[Execution], Any]] = {
    "WorkflowId": lambda ex: ex.workflow_id,
    "WorkflowType": lambda ex: ex.workflow_type,
    "RunId": lambda ex: ex.run_id,
    "ExecutionStatus": lambda ex: int(ex.status),
    "StartTime": lambda ex: ex.start_time,
    "CloseTime": lambda ex: ex.close_time,
    "ExecutionTime": lambda ex: ex.start_time,
    "TaskQueue": lambda ex: ex.task_queue,
    "HistoryLength": lambda ex: ex.next_event_id - 1,
}


def page_token(namespace: str, fingerprint: str, sort: Sequence[SortKey], last: Execution) -> bytes:
    """The token of the page after ``last``, for the query with this fingerprint."""
    key = [_ROW_KEY[k.field](last) for k in sort]
    return orjson.dumps({"v": _TOKEN_VERSION, "q": _query_id(namespace, fingerprint), "k": key})


def token_key(token: bytes, namespace: str, fingerprint: str, sort: Sequence[SortKey]) -> list[Any]:
    """The sort key a token holds, checked against the query it is used with.

    Raises:
        InvalidArgumentError: the token was made for another query (or namespace), or is
            not a token perdure made.
    """
    try:
        doc = orjson.loads(token)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise _bad_token("it is not one perdure made") from exc
    if not isinstance(doc, dict) or doc.get("v") != _TOKEN_VERSION:
        raise _bad_token("it is not one perdure made")
    if doc.get("q") != _query_id(namespace, fingerprint):
        raise _bad_token(
            "it was made for another query (or namespace); a token continues only the "
            "listing it came from"
        )
    key = doc.get("k")
    if not isinstance(key, list) or len(key) != len(sort):
        raise _bad_token("it is not one perdure made")
    for k, value in zip(sort, key, strict=True):
        if not _fits(k, value):
            raise _bad_token("it is not one perdure made")
    # A whole number of seconds comes back from JSON as an int; the column is a double.
    return [
        float(v) if k.kind == "float" and v is not None else v
        for k, v in zip(sort, key, strict=True)
    ]


def _fits(key: SortKey, value: Any) -> bool:
    if value is None:
        return key.nullable
    if key.kind == "str":
        return isinstance(value, str)
    if key.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _query_id(namespace: str, fingerprint: str) -> str:
    return hashlib.sha256(f"{namespace}\x00{fingerprint}".encode()).hexdigest()[:16]


def _bad_token(why: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"Invalid next_page_token: {why}. Pass the token of the previous page of the same "
        "query, or None to start from the first page."
    )
