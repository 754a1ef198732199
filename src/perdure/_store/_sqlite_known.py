"""The executions rows a SQLite write transaction has read or written, so that an ``UPDATE``
writes only the columns that changed.

SQLite rewrites the entry of every index on a column an ``UPDATE`` sets, whether its value
changed or not, and ``status`` alone is in six indexes of executions (listing, counting,
retention, gauges), ``close_time`` and ``wft_attempt`` in more. Most updates change only
``next_event_id``, ``history_size`` and ``wft_state``, which no index holds: written as the
whole mutable row they cost about five times what they need.

So the transaction remembers, for each run, the ``Execution`` it last read or wrote and the
values its row held then. Writing that same object back sets only the columns whose value
differs (nothing at all if none does); any other object (two of one run, one read outside
this transaction) writes every column, as before. What is remembered is forgotten when a
transaction begins or is rolled back, wholly or to a savepoint: only this transaction's own
reads and writes, under its write lock, say what a row holds.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from perdure._store._marks import BufferedRuns
from perdure._store._rows import (
    EXEC_COLUMNS,
    EXEC_MONOTONIC_COLS,
    EXEC_MUTABLE_COLS,
    execution_update_values,
)
from perdure._store._types import Execution

# The mutable columns' values in a row read in EXEC_COLS order (or written by
# execution_values, the same order).
_mutable_of = operator.itemgetter(*(EXEC_COLUMNS.index(c) for c in EXEC_MUTABLE_COLS))


def _set(column: str) -> str:
    return f"{column} = MAX({column}, ?)" if column in EXEC_MONOTONIC_COLS else f"{column} = ?"


UPDATE_ALL = f"UPDATE executions SET {', '.join(map(_set, EXEC_MUTABLE_COLS))} WHERE run_id = ?"


def _update_sql(changed: tuple[int, ...]) -> str:
    sets = ", ".join(_set(EXEC_MUTABLE_COLS[i]) for i in changed)
    return f"UPDATE executions SET {sets} WHERE run_id = ?"


_SQL: dict[tuple[int, ...], str] = {}


class KnownRows:
    """What the open write transaction knows its executions rows hold (see the module)."""

    __slots__ = ("_rows", "buffered")

    def __init__(self) -> None:
        self._rows: dict[str, tuple[Execution, tuple[Any, ...]]] = {}
        self.buffered = BufferedRuns()

    def forget(self) -> None:
        self._rows.clear()
        self.buffered.clear()

    def read(self, ex: Execution, row: Sequence[Any]) -> Execution:
        """``ex`` was built from ``row``, read in ``EXEC_COLS`` order."""
        self._rows[ex.run_id] = (ex, _mutable_of(row))
        return ex

    def inserted(self, ex: Execution, values: Sequence[Any]) -> None:
        """``ex`` was inserted as ``values`` (``execution_values``)."""
        self._rows[ex.run_id] = (ex, _mutable_of(values))

    def written(self, ex: Execution, values: tuple[Any, ...]) -> None:
        """``ex`` was updated to ``values`` (from :meth:`update`)."""
        self._rows[ex.run_id] = (ex, values[:-1])

    def update(self, ex: Execution) -> tuple[str, tuple[Any, ...], tuple[Any, ...]] | None:
        """The statement and parameters that write ``ex`` back, and the values to give
        :meth:`written` once it ran; None if its row already holds every value."""
        values = execution_update_values(ex)
        known = self._rows.get(ex.run_id)
        if known is None or known[0] is not ex:
            return UPDATE_ALL, values, values
        old = known[1]
        changed = tuple(i for i, v in enumerate(values[:-1]) if v != old[i])
        if not changed:
            return None
        if len(changed) == len(old):
            return UPDATE_ALL, values, values
        sql = _SQL.get(changed)
        if sql is None:
            sql = _SQL[changed] = _update_sql(changed)
        return sql, (*(values[i] for i in changed), ex.run_id), values
