"""The SQLite store: one file (or memory), WAL, ``synchronous=FULL``, group commit.

SQLite calls take microseconds, so they run on the event loop's thread; the only slow part,
the commit's fsync, is shared by every operation submitted in the same loop iteration. The
operations of a batch run without savepoints: one that fails before writing is forgotten, and
only when one fails after writing is the batch run again with a savepoint each.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from perdure._common.clock import Clock
from perdure._common.events import HistoryEvent, decode_attributes
from perdure._errors import PerdureError
from perdure._store._base import Store
from perdure._store._effects import Effects
from perdure._store._schema import LATEST_VERSION, MIGRATIONS
from perdure._store._schema_check import VERSION_TABLE, check_schema, sqlite_state
from perdure._store._sqlite_tx import _SQLiteTx
from perdure._store._tx import Tx
from perdure._store._types import (
    QueryResult,
    TaskKind,
)
from perdure._store._wake import FALLBACK_POLL_INTERVAL, PeerChannel

T = TypeVar("T")

# Pages given back to the file system by one short transaction of reclaim_space().
RECLAIM_PAGES = 64


class SQLiteStore(Store):
    """perdure's state in one SQLite file (``sqlite:///path.db``) or in memory."""

    def __init__(
        self, path: str, clock: Clock, *, busy_timeout: float = 5.0, mode: str = "rwc"
    ) -> None:
        super().__init__(clock)
        self.path = path
        self.read_only = mode == "ro"
        memory = path == ":memory:"
        if not memory:
            directory = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(directory):
                raise PerdureError(
                    f"Cannot open SQLite database {path!r}: directory {directory!r} does not exist"
                )
            if mode != "rwc" and not os.path.exists(path):
                raise PerdureError(
                    f"Cannot open SQLite database {path!r}: the file does not exist, and "
                    f"?mode={mode} does not create it (drop ?mode={mode} to create it)"
                )
        target = path
        if mode != "rwc":  # SQLite takes the mode from a file: URI
            target = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode={mode}"
        try:
            self._conn = sqlite3.connect(
                target,
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout,
                uri=mode != "rwc",
            )
        except sqlite3.DatabaseError as exc:
            raise PerdureError(f"Cannot open {path!r} as a SQLite database: {exc}") from exc
        try:
            if not memory and not self.read_only:
                # A new file gives the space of deleted rows back (reclaim_space); a file
                # made before keeps its setting, which only a VACUUM can change.
                self._conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                self._use_wal(busy_timeout)
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            self._migrate()
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise PerdureError(
                    f"Cannot open {path!r} as a perdure SQLite database: {exc}", cause=exc
                ) from exc
            raise
        self._tx = _SQLiteTx(self._conn)
        self._queue: list[tuple[Callable[[Tx, Effects], Awaitable[Any]], asyncio.Future[Any]]] = []
        self._flush_pending = False
        self._closed = False
        # Wake-ups to and from the other processes on this file (none share memory, and a
        # virtual clock's environment is this process's alone).
        self._peers: PeerChannel | None = None
        if not memory and not clock.virtual:
            self._peers = PeerChannel.open(path, self.woken_by_peer)
            if self._peers is not None:
                self.closed_poll_interval = FALLBACK_POLL_INTERVAL

    def _use_wal(self, busy_timeout: float) -> None:
        """Switch the file to WAL (a no-op once it is). Connections switching a new file
        together would deadlock, so SQLite fails all but one at once, without waiting for
        the busy timeout: those try again, for as long."""
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorname != "SQLITE_BUSY" or time.monotonic() >= deadline:
                    raise
            time.sleep(0.005)

    def _migrate(self) -> None:
        """Bring the schema to this perdure's version, after checking it is what its version
        says. The version is read again under the write lock: processes opening a new file
        together take turns, and the first one migrates it."""
        c = self._conn
        where = repr(self.path)
        c.execute("BEGIN")  # one snapshot: a migration committed meanwhile is seen whole or not
        try:
            state = sqlite_state(c)
        finally:
            c.execute("COMMIT")
        if check_schema(state, where) == LATEST_VERSION:
            return
        if self.read_only:
            version = state.versions[0] if state.versions else 0
            has = f"is at perdure schema version {version}" if version else "has no perdure tables"
            raise PerdureError(
                f"The database {where} {has} and is opened read-only (?mode=ro), so it cannot "
                f"be migrated to version {LATEST_VERSION}: open it once without ?mode=ro"
            )
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
            version = check_schema(sqlite_state(c), where)
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    c.execute(statement)
            c.execute(f"DELETE FROM {VERSION_TABLE}")
            c.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (?)", (LATEST_VERSION,))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    # -- transactions --------------------------------------------------------------------------
    async def transact(self, fn: Callable[[Tx, Effects], Awaitable[T]]) -> T:
        if self._closed:
            raise self._closed_error()
        if self.read_only:
            raise PerdureError(
                f"The SQLite database {self.path!r} is opened read-only (?mode=ro): it can be "
                "read (list, describe, fetch history) but not changed; open it without "
                "?mode=ro to start, signal or run workflows"
            )
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((fn, future))
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_pending = False
        batch, self._queue = self._queue, []
        if not batch:
            return
        c = self._conn
        known = self._tx.known  # what this transaction read and wrote of executions rows
        try:
            known.forget()
            c.execute("BEGIN IMMEDIATE")
            done = self._attempt(batch, savepoints=False)
            if done is None:
                c.execute("ROLLBACK")
                known.forget()
                c.execute("BEGIN IMMEDIATE")
                done = self._attempt(batch, savepoints=True)
            if done is None:  # pragma: no cover - with savepoints every failure is undone
                raise sqlite3.OperationalError("a failed operation could not be undone")
            outcomes, effects = done
            c.execute("COMMIT")
        except sqlite3.Error as exc:
            known.forget()
            if c.in_transaction:
                c.execute("ROLLBACK")
            failed = PerdureError(f"SQLite transaction failed: {exc}", cause=exc)
            for _, pending in batch:
                if not pending.done():
                    pending.set_exception(failed)
            return
        known.forget()
        for future, result, error in outcomes:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
        self.after_commit(effects)
        if self._peers is not None:
            self._peers.send(effects)

    def _attempt(
        self,
        batch: list[tuple[Callable[[Tx, Effects], Awaitable[Any]], asyncio.Future[Any]]],
        *,
        savepoints: bool,
    ) -> tuple[list[tuple[asyncio.Future[Any], Any, BaseException | None]], Effects] | None:
        """Run the batch's operations in the open transaction. Without savepoints (the usual
        case: a savepoint costs two statements an operation), an operation that fails before
        writing anything (a stale completion, a duplicate start) is simply forgotten; one that
        fails after writing makes this return None, for the batch to be run again with a
        savepoint per operation, so that only its own writes are undone."""
        c = self._conn
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        effects = Effects()
        for fn, future in batch:
            if savepoints:
                c.execute("SAVEPOINT op")
            fx = Effects()
            written = c.total_changes
            try:
                result = _run_sync(fn(self._tx, fx))
            except Exception as exc:
                if not c.in_transaction:  # SQLite rolled it all back (disk full, I/O error)
                    raise sqlite3.OperationalError(f"transaction rolled back: {exc}") from exc
                self._tx.known.forget()  # undone, or left half-done: read afresh
                if savepoints:
                    c.execute("ROLLBACK TO op")
                    c.execute("RELEASE op")
                elif c.total_changes != written:
                    return None
                outcomes.append((future, None, _as_perdure(exc)))
            else:
                if savepoints:
                    c.execute("RELEASE op")
                outcomes.append((future, result, None))
                effects.merge(fx)
        return outcomes, effects

    async def read(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        if self._closed:
            raise self._closed_error()
        try:
            result: T = _run_sync(fn(self._tx))
        except sqlite3.Error as exc:
            raise _as_perdure(exc) from exc
        return result

    async def reclaim_space(self) -> None:
        """Shrink the file by the pages deleted rows freed (``auto_vacuum=INCREMENTAL``), a
        few at a time: each step is a short write transaction of its own, so workers'
        transactions go between them."""
        while not self._closed:

            async def step(tx: Tx, fx: Effects) -> int:
                c = self._conn
                # One page per statement: the sqlite3 module steps a PRAGMA only once.
                for _ in range(RECLAIM_PAGES):
                    c.execute("PRAGMA incremental_vacuum(1)")
                return int(c.execute("PRAGMA freelist_count").fetchone()[0])

            if not self._incremental or await self.transact(step) == 0:
                return

    @property
    def _incremental(self) -> bool:
        row = self._conn.execute("PRAGMA auto_vacuum").fetchone()
        free = self._conn.execute("PRAGMA freelist_count").fetchone()
        return bool(row and row[0] == 2 and free and free[0] > 0)

    # -- reads ---------------------------------------------------------------------------------
    async def get_history(
        self, run_id: str, after_event_id: int = 0, limit: int | None = None
    ) -> list[HistoryEvent]:
        n = -1 if limit is None else limit
        return await self._tx.get_history_events(run_id, after_event_id, n)

    async def next_wakeup(self) -> float | None:
        row = self._conn.execute(NEXT_WAKEUP_SQL, (self.clock.now(),)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    async def is_idle(self) -> bool:
        if self._queue:
            return False
        now = self.clock.now()
        if self._conn.execute(
            "SELECT 1 FROM tasks WHERE lease_owner IS NOT NULL AND async_pending = 0 LIMIT 1"
        ).fetchone():
            return False
        if self._conn.execute(
            "SELECT 1 FROM timers WHERE fire_at <= ? UNION ALL "
            "SELECT 1 FROM schedules WHERE next_fire <= ? LIMIT 1",
            (now, now),
        ).fetchone():
            return False
        # A ready task counts only if a worker here polls its queue: nobody will take it
        # otherwise, and its deadlines (schedule-to-start) must still come due.
        polled = self.notifier.listened()
        rows = self._conn.execute(
            "SELECT DISTINCT namespace, task_queue, kind FROM tasks "
            "WHERE lease_owner IS NULL AND visible_at <= ?",
            (now,),
        ).fetchall()
        ready = [k for r in rows if (k := ("queue", r[0], r[1], TaskKind(r[2]))) in polled]
        # Wake their pollers: a poller that polled just before the virtual clock moved would
        # otherwise sleep until a virtual deadline that, with this task ready, never comes.
        self.notifier.fire(ready)
        return not ready

    async def activity_running(self) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM tasks WHERE kind = 2 AND lease_owner IS NOT NULL "
            "AND async_pending = 0 LIMIT 1"
        ).fetchone()
        return row is not None

    # -- queries -------------------------------------------------------------------------------
    async def get_query_result(self, query_id: int) -> QueryResult | None:
        row = self._conn.execute(
            "SELECT ok, result, error FROM query_results WHERE query_id = ?", (query_id,)
        ).fetchone()
        if row is None:
            return None
        result = decode_attributes(row[1])["r"] if row[1] is not None else None
        return QueryResult(ok=bool(row[0]), result=result, error=row[2])

    async def closed_among(self, run_ids: Sequence[str]) -> set[str]:
        if not run_ids:
            return set()
        marks = ", ".join("?" * len(run_ids))
        rows = self._conn.execute(
            f"SELECT run_id FROM executions WHERE status != 1 AND run_id IN ({marks})",
            list(run_ids),
        ).fetchall()
        return {r[0] for r in rows}

    async def close(self) -> None:
        if self._closed:
            return
        if self._queue:
            self._flush()
        self._closed = True
        self._conn.close()
        if self._peers is not None:
            self._peers.close()
        self._wake_on_close()


def _as_perdure(exc: BaseException) -> BaseException:
    """Database errors as ``PerdureError`` (with SQLite's error as ``.cause``); the rules'
    own errors unchanged."""
    if isinstance(exc, sqlite3.Error):
        return PerdureError(f"SQLite operation failed: {exc}", cause=exc)
    return exc


# The earliest of: a timer, a lease or timeout, a task becoming visible, a schedule. Each is
# one seek of its own index (tasks_waiting for the visible_at of unleased tasks).
NEXT_WAKEUP_SQL = (
    "SELECT MIN(t) FROM (SELECT MIN(fire_at) AS t FROM timers "
    "UNION ALL SELECT MIN(deadline) FROM tasks WHERE deadline IS NOT NULL "
    "UNION ALL SELECT MIN(visible_at) FROM tasks WHERE lease_owner IS NULL "
    "AND visible_at > ? UNION ALL SELECT MIN(next_fire) FROM schedules)"
)


def _run_sync(coro: Any) -> Any:
    """Run a coroutine that never suspends (the SQLite ``Tx`` primitives don't) to its end."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("A SQLite store operation tried to suspend inside a transaction")
