"""Moving a perdure database to another (``perdure migrate --from URL --to URL``): SQLite to
PostgreSQL when an application outgrows one file, PostgreSQL to SQLite to look at a
production history locally.

Both databases have the same logical schema (``_schema.py`` and ``_postgres_schema.py`` make
the same tables at each version), so every row is copied as it is, table by table, in
batches: executions with their histories, inboxes, tasks, timers, search attributes,
updates, signal idempotency keys, namespaces, the references to offloaded payloads,
schedules and the flow-control state (each fairness key's pass, each rate-limited queue's
tokens). The source is opened read-only and left as it was; a target that holds any perdure
row is refused. Once copied, each table's row count and a checksum of its rows (the sum of
each row's SHA-256, so the order rows come in does not matter) are compared on both sides.
Only then are the leases the source's workers held released in the target, by the store's
own rules (a workflow task goes back to its queue; an activity attempt that was running
counts as timed out and is retried by its policy), so the target's workers take every task
up.

A table added to the schema is copied by adding its name to ``TABLES``: its columns are
read from the schema itself.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from perdure._errors import PerdureError
from perdure._store._base import Store
from perdure._store._schema import LATEST_VERSION
from perdure._store._schema_check import required_columns

# The tables copied, in this order (query tasks and answers are not: they live seconds).
TABLES = (
    "namespaces",
    "search_attribute_types",
    "executions",
    "history",
    "inbox",
    "tasks",
    "timers",
    "search_attributes",
    "updates",
    "payload_refs",
    "payload_garbage",
    "signal_requests",
    "schedules",
    "fairness",
    "rate_limits",
)
# Rows whose insertion order the store reads are copied in that order (SQLite's rowid,
# PostgreSQL's seq column: the latest run of an id is the one created last; updates).
_ORDER = {"sqlite": {"executions": "rowid", "updates": "rowid"}, "postgresql": {}}
_ORDER["postgresql"] = {"executions": "seq", "updates": "seq"}
_WHERE = {"tasks": "kind <> 3"}
BATCH = 2000


class MigrationError(PerdureError):
    """The databases cannot be migrated (a non-empty target, the same database twice), or
    what was copied does not match the source (the counts or checksums say which table)."""


@dataclass(frozen=True, slots=True)
class TableReport:
    table: str
    rows: int
    checksum: str


def _columns(table: str) -> list[str]:
    return sorted(required_columns(LATEST_VERSION)[table])


def _row_hash(row: Sequence[Any]) -> int:
    def plain(value: Any) -> Any:
        if isinstance(value, bytes | memoryview | bytearray):
            return {"b": bytes(value).hex()}
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 3.0 and 3 are one value in both databases
        return value

    data = orjson.dumps([plain(v) for v in row])
    return int.from_bytes(hashlib.sha256(data).digest(), "big")


class _Side:
    """Raw access to one database for the copy."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.dialect = store.dialect
        self._pg: Any = None

    async def open(self, *, read_only: bool) -> None:
        await self.store.ready()  # migrates a new target; checks the source's version
        if self.dialect == "postgresql":
            pool = await self.store._ensure_pool()  # type: ignore[attr-defined]
            self._pg = await pool.acquire()
            if read_only:
                await self._pg.execute("SET default_transaction_read_only = on")

    async def close(self) -> None:
        if self._pg is not None:
            pool = await self.store._ensure_pool()  # type: ignore[attr-defined]
            await self._pg.execute("RESET default_transaction_read_only")
            await pool.release(self._pg)
            self._pg = None

    @property
    def _sqlite(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = self.store._conn  # type: ignore[attr-defined]
        return conn

    def _select(self, table: str, columns: Sequence[str]) -> str:
        where = f" WHERE {_WHERE[table]}" if table in _WHERE else ""
        order = _ORDER[self.dialect].get(table)
        return f"SELECT {', '.join(columns)} FROM {table}{where}" + (
            f" ORDER BY {order}" if order else ""
        )

    async def count(self, table: str) -> int:
        where = f" WHERE {_WHERE[table]}" if table in _WHERE else ""
        sql = f"SELECT COUNT(*) FROM {table}{where}"
        if self._pg is not None:
            return int(await self._pg.fetchval(sql))
        return int(self._sqlite.execute(sql).fetchone()[0])

    async def rows(
        self, table: str, columns: Sequence[str]
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        sql = self._select(table, columns)
        if self._pg is not None:
            async with self._pg.transaction(readonly=True):
                cursor = await self._pg.cursor(sql)
                while batch := await cursor.fetch(BATCH):
                    yield [tuple(r) for r in batch]
            return
        cursor = self._sqlite.execute(sql)
        while batch := cursor.fetchmany(BATCH):
            yield batch

    async def insert(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if self._pg is not None:
            await self._pg.copy_records_to_table(table, records=rows, columns=list(columns))
            return
        marks = ", ".join("?" * len(columns))
        c = self._sqlite
        c.execute("BEGIN IMMEDIATE")
        try:
            c.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    async def checksum(self, table: str, columns: Sequence[str]) -> TableReport:
        total, n = 0, 0
        async for batch in self.rows(table, columns):
            for row in batch:
                total = (total + _row_hash(row)) % (1 << 256)
                n += 1
        return TableReport(table, n, f"{total:064x}")

    async def after_copy(self) -> None:
        """PostgreSQL's id sequences go past the ids copied in."""
        if self._pg is None:
            return
        rows = await self._pg.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'"
        )
        for table, column in rows:
            await self._pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                f"GREATEST((SELECT MAX({column}) FROM {table}), 1))"
            )


async def migrate(
    source: Store,
    target: Store,
    *,
    on_progress: Callable[[str, int, int], None] = lambda table, done, total: None,
) -> list[TableReport]:
    """Copy every perdure row of ``source`` into the empty ``target`` (see the module's
    docstring); returns each table's row count and checksum, as verified on both sides.

    Raises:
        MigrationError: the target is not empty, or the copy does not match the source.
    """
    src, dst = _Side(source), _Side(target)
    await src.open(read_only=True)
    try:
        await dst.open(read_only=False)
        try:
            return await _copy(src, dst, on_progress)
        finally:
            await dst.close()
    finally:
        await src.close()


async def _copy(
    src: _Side, dst: _Side, on_progress: Callable[[str, int, int], None]
) -> list[TableReport]:
    filled = [t for t in TABLES if await dst.count(t)]
    if filled:
        raise MigrationError(
            f"The target database is not empty (it has rows in {', '.join(filled)}): "
            "migrate into a new database (or a new ?schema=), so nothing is mixed or lost"
        )
    totals = {t: await src.count(t) for t in TABLES}
    for table in TABLES:
        columns = _columns(table)
        done = 0
        on_progress(table, 0, totals[table])
        async for batch in src.rows(table, columns):
            await dst.insert(table, columns, batch)
            done += len(batch)
            on_progress(table, done, totals[table])
    await dst.after_copy()
    reports = []
    for table in TABLES:
        columns = _columns(table)
        mine, theirs = await src.checksum(table, columns), await dst.checksum(table, columns)
        if mine != theirs:
            raise MigrationError(
                f"Table {table} does not match after the copy: {mine.rows} rows (checksum "
                f"{mine.checksum[:16]}) in the source, {theirs.rows} ({theirs.checksum[:16]}) "
                "in the target. The source is unchanged; drop the target and try again"
            )
        reports.append(mine)
    await _release_leases(dst)
    return reports


async def _release_leases(dst: _Side) -> None:
    """The source's workers are gone: their leases run out now, by the store's rules. An
    activity waiting to be completed from outside (async completion) keeps its lease."""
    sql = (
        "SELECT lease_owner, run_id, ref, kind, async_pending FROM tasks "
        "WHERE lease_owner IS NOT NULL"
    )
    if dst._pg is not None:
        rows = [tuple(r) for r in await dst._pg.fetch(sql)]
    else:
        rows = dst._sqlite.execute(sql).fetchall()
    keep = frozenset((r[1], int(r[2])) for r in rows if r[3] == 2 and r[4])
    for owner in sorted({r[0] for r in rows}):
        await dst.store.expire_leases(owner, keep)
