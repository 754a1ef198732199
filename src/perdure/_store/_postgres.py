"""The PostgreSQL store: an asyncpg pool, group commit, row locks, LISTEN/NOTIFY.

Many processes on many machines share one database. What SQLite gets from having a single
writer, PostgreSQL gets from row locks: inside a write transaction every read of an execution
or a task row takes ``FOR UPDATE``, so two processes changing one run take turns, and the
rules' read-then-write stays right (under READ COMMITTED a row read with ``FOR UPDATE`` is
its latest committed version). Claims, due timers and passed deadlines are taken with
``FOR UPDATE SKIP LOCKED``: pollers never wait for each other, no task is claimed twice and a
timer due in every process fires once.

An operation that loses a deadlock, or a race on a unique index (two processes starting one
workflow id), is undone and run again in the next transaction, where it sees the winner's
row. Every other operation of the transaction stands. The operations of a batch run without
savepoints (each costs a round trip) until one fails after writing: the batch is then rolled
back and run again with one per operation (``_postgres_batch``).

Connecting needs the event loop, so the store connects on first use: it migrates the schema
(under an advisory lock, so processes starting together migrate once), keeps that connection
to LISTEN, and opens the pool. After each commit, the kind of wake-ups SQLite delivers in
process (a ready queue, a closed run, an answered query, a settled update, an activity to
cancel) are sent to the other processes with NOTIFY; polling remains the bounded fallback.

The server may restart, or kill a connection, at any time. A transaction that fails because
its connection was lost before COMMIT is run again on a new connection, with backoff, until
the server answers (for at most ``RECONNECT_SECONDS``); a read likewise. A connection lost
during COMMIT leaves the outcome unknown: the store asks the server, once it answers again,
whether the transaction committed (its id was learned before COMMIT; the commit log survives
a restart and a crash), and either settles the batch as committed or runs it again, so that
nothing is applied twice. The LISTEN connection is opened again too, after which every
poller is woken, since notifications sent meanwhile are lost. An outage is logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import asyncpg  # type: ignore[import-untyped]
import orjson

from perdure._common.clock import Clock
from perdure._common.events import HistoryEvent, decode_attributes
from perdure._errors import DatabaseUnavailableError, PerdureError
from perdure._store._base import Store
from perdure._store._effects import Effects
from perdure._store._postgres_rows import TaskIds
from perdure._store._postgres_schema import LATEST_VERSION, MIGRATIONS
from perdure._store._postgres_support import (
    CLOSING_RECONNECT_SECONDS,
    RECONNECT_SECONDS,
    _again,
    _as_perdure,
    _backoff,
    _BatchRun,
    _channel,
    _connection_lost,
    _discard_if_lost,
    _keep_session,
    _lock_key,
    _Op,
    _Outage,
    _parse_url,
    _postgres_state,
    _quote,
    _reason,
    _Server,
    _server_of,
    _session_settings,
    _settle,
    _unreachable,
)
from perdure._store._postgres_tx import _PostgresTx
from perdure._store._postgres_xid import commit_outcome
from perdure._store._schema_check import VERSION_TABLE, check_schema
from perdure._store._tx import Tx
from perdure._store._types import QueryResult, TaskKind
from perdure._store._wake import FALLBACK_POLL_INTERVAL

T = TypeVar("T")
log = logging.getLogger("perdure.store")
CONNECT_TIMEOUT = 10.0
# Operations committed together at most; more wait for the next transaction.
MAX_BATCH = 256
# How often the listening connection is checked when no notification arrives.
LISTENER_PING_INTERVAL = 30.0


class PostgresStore(Store):
    """perdure's state in PostgreSQL, shared by every process that opens it.

    Args:
        url: ``postgresql://user:password@host:5432/dbname`` (or ``postgres://``), with the
            parameters asyncpg takes (``sslmode=require`` ...); ``?schema=NAME`` keeps the
            tables in a schema of their own, created if missing.
        clock: the time the rules see.
        min_connections: connections the pool opens up front (the listening connection is
            one more).
        max_connections: connections the pool opens at most.
    """

    dialect = "postgresql"
    closed_poll_interval = FALLBACK_POLL_INTERVAL  # closes come by NOTIFY: polls are a fallback

    def __init__(
        self, url: str, clock: Clock, *, min_connections: int = 1, max_connections: int = 10
    ) -> None:
        super().__init__(clock)
        self._target = _parse_url(url)
        self._pool_size = (min_connections, max_connections)
        self._channel = _channel(self._target.schema)
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._queue: list[_Op] = []
        self._flusher: asyncio.Task[None] | None = None
        self._in_flight = 0
        # This process's connections, by backend pid.
        self._own_pids: dict[int, _Server] = {}
        self._listener_task: asyncio.Task[None] | None = None
        self._listen_conn: Any = None
        self._closed = False
        self._outage = _Outage(self._target.shown)
        self._task_ids = TaskIds()

    # -- connecting ----------------------------------------------------------------------------
    async def _ensure_pool(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._closed:
                raise self._closed_error()
            if self._pool is None:
                await self._open()
        return self._pool

    async def _connect(self) -> Any:
        try:
            return await asyncpg.connect(self._target.dsn, timeout=CONNECT_TIMEOUT)
        except Exception as exc:
            # A server that does not answer (yet) is waited for; a refusal is final.
            error = DatabaseUnavailableError if _connection_lost(exc) else PerdureError
            raise error(
                f"Cannot connect to PostgreSQL at {self._target.shown}: {exc}", cause=exc
            ) from exc

    async def _open(self) -> None:
        conn = await self._connect()
        try:
            await self._migrate(conn)
            await conn.add_listener(self._channel, self._on_notification)
            schema = self._target.schema
            # No floor: asyncpg would log each failed reconnect; a lost one is replaced on use.
            pool = await asyncpg.create_pool(
                self._target.dsn,
                min_size=0,
                max_size=self._pool_size[1],
                timeout=CONNECT_TIMEOUT,
                server_settings=_session_settings(schema),
                init=self._init_connection,
                reset=_keep_session,
            )
            try:
                warm = [await pool.acquire() for _ in range(self._pool_size[0])]
                for c in warm:
                    await pool.release(c)
            except BaseException:
                pool.terminate()
                raise
            self._pool = pool
        except BaseException as exc:
            conn.terminate()
            if isinstance(exc, PerdureError | asyncio.CancelledError):
                raise
            error = DatabaseUnavailableError if _connection_lost(exc) else PerdureError
            raise error(
                f"Cannot open the perdure database at {self._target.shown}: {exc}", cause=exc
            ) from exc
        self._listen_conn = conn  # closed here if the task is cancelled before it starts
        self._listener_task = asyncio.get_running_loop().create_task(
            self._keep_listening(conn), name="perdure.postgres.listener"
        )

    async def _init_connection(self, conn: Any) -> None:
        # This process's notifications were acted on at commit (a closed connection's pid
        # may be another process's after a restart).
        pid = conn.get_server_pid()
        self._own_pids[pid] = await _server_of(conn)
        conn.add_termination_listener(lambda _conn: self._own_pids.pop(pid, None))

    def _reconnect_seconds(self) -> float:
        """How long an operation is tried again while the connection is lost."""
        return CLOSING_RECONNECT_SECONDS if self._closed else RECONNECT_SECONDS

    async def _migrate(self, conn: Any) -> None:
        schema = self._target.schema
        async with conn.transaction():
            # Processes opening one database together migrate it once.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(schema))
            if schema is not None:
                # CREATE SCHEMA needs a privilege on the database even when the schema exists.
                if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
                    await conn.execute(f"CREATE SCHEMA {_quote(schema)}")
                await conn.execute(f"SET LOCAL search_path TO {_quote(schema)}")
            # Read under the lock: what another process migrated meanwhile is seen.
            where = self._target.shown + (f" (schema {schema!r})" if schema else "")
            version = check_schema(await _postgres_state(conn), where)
            if version == LATEST_VERSION:
                return
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)"
            )
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    await conn.execute(statement)
            await conn.execute(f"DELETE FROM {VERSION_TABLE}")
            await conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES ($1)", LATEST_VERSION)

    # -- notifications from other processes ----------------------------------------------------
    async def _keep_listening(self, conn: Any) -> None:
        failures = 0
        while not self._closed:
            if conn is None:
                try:
                    conn = await self._connect()
                    await conn.add_listener(self._channel, self._on_notification)
                except BaseException as exc:  # cancelled by close() too: end the connection
                    if conn is not None:
                        conn.terminate()
                        conn = None
                    if not isinstance(exc, Exception):
                        raise
                    self._outage.lost(_reason(exc))
                    await asyncio.sleep(_backoff(failures))
                    failures += 1
                    continue
                failures = 0
                self._outage.answered()
                # Whatever was notified while nobody listened is lost: look again.
                self.woken_by_peer(None)
            reason = "the LISTEN connection was closed"
            try:
                await self._watch(conn)
            except Exception as exc:
                reason = _reason(exc)
            finally:
                conn.terminate()
            conn = None
            if not self._closed:
                self._outage.lost(reason)

    async def _watch(self, conn: Any) -> None:
        """Return when the connection is lost or the store closes."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        while not lost.is_set() and not self._closed:
            try:
                await asyncio.wait_for(lost.wait(), LISTENER_PING_INTERVAL)
            except TimeoutError:
                await asyncio.wait_for(conn.execute("SELECT 1"), CONNECT_TIMEOUT)

    def _on_notification(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if pid in self._own_pids or self._closed:
            return
        try:
            items = orjson.loads(payload)
        except orjson.JSONDecodeError:  # another perdure version's: polling will find it
            log.warning("Ignoring a malformed perdure notification: %r", payload)
            items = []
        self.woken_by_peer(items if isinstance(items, list) else [])

    # -- transactions --------------------------------------------------------------------------
    async def transact(self, fn: Callable[[Tx, Effects], Awaitable[T]]) -> T:
        if self._closed:
            raise self._closed_error()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Op(fn, future))
        if self._flusher is None or self._flusher.done():
            # Started on the next loop iteration: what is submitted until then commits together.
            self._flusher = loop.create_task(self._flush(), name="perdure.postgres.commit")
        return await future

    async def _flush(self) -> None:
        failures = 0  # batches in a row that failed as a whole
        while self._queue:
            batch = [op for op in self._queue[:MAX_BATCH] if not op.future.done()]
            del self._queue[:MAX_BATCH]
            if not batch:
                continue
            self._in_flight = len(batch)
            try:
                again, failed = await self._commit(batch)
            except BaseException as exc:  # cancelled with the event loop, or a bug
                for op in batch:
                    _settle(op, None, PerdureError(f"The store stopped: {exc!r}", cause=exc))
                raise
            finally:
                self._in_flight = 0
            self._queue[:0] = again
            if not failed:
                failures = 0
            elif again:
                await asyncio.sleep(_backoff(failures))
                failures += 1

    async def _commit(self, batch: list[_Op]) -> tuple[list[_Op], bool]:
        """Run ``batch`` in one transaction, each operation undone alone if it fails. Returns the
        operations to run again, and whether the batch failed as a whole."""
        try:
            pool = await self._ensure_pool()
        except Exception as exc:
            if _connection_lost(exc):  # not reachable yet: wait for it as for a lost one
                self._outage.lost(_reason(exc))
                return _again(batch, exc, self._reconnect_seconds()), True
            for op in batch:
                _settle(op, None, exc)
            return [], False
        run = _BatchRun(batch)
        try:
            async with pool.acquire() as conn:
                run.server = self._own_pids.get(conn.get_server_pid())
                await self._run(conn, run)
        except Exception as exc:
            if _connection_lost(exc):
                self._outage.lost(_reason(exc))
            outcome: str | None = "aborted"
            if run.committing and run.xid is not None:
                outcome = await commit_outcome(
                    self._read, run.xid, run.server, self._reconnect_seconds
                )
            elif run.committing:
                outcome = "committed"  # it wrote nothing: what it read stands
            if outcome == "aborted":
                # Nothing was committed: run the whole batch again on another connection.
                if not _connection_lost(exc):
                    log.warning("PostgreSQL transaction failed (%s); retrying", exc)
                return _again(batch, exc, self._reconnect_seconds()), True
            if outcome != "committed":
                lost = PerdureError(
                    "The connection to PostgreSQL failed while committing and whether the "
                    f"transaction took effect could not be learned: {exc}",
                    cause=exc,
                )
                for op in batch:
                    _settle(op, None, lost)
                return [], True
        else:
            self._outage.answered()
        for op, result, error in run.done:
            _settle(op, result, error)
        self.after_commit(run.effects)
        return run.again, False

    async def _run(self, conn: Any, run: _BatchRun) -> None:
        try:
            # Its last statement NOTIFYs other processes and reads the xid (for a lost COMMIT).
            await _PostgresTx(conn, lock=True, ids=self._task_ids).run_batch(run, self._channel)
            run.committing = True
            await conn.execute("COMMIT")
        except BaseException as exc:
            _discard_if_lost(conn, exc)
            if not run.committing:
                with contextlib.suppress(Exception):
                    if not conn.is_closed() and conn.is_in_transaction():
                        await conn.execute("ROLLBACK")
            raise

    async def read(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        if self._closed:
            raise self._closed_error()
        return await self._read(fn)

    async def _read(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        failures = 0
        lost_at: float | None = None
        while True:
            try:
                pool = await self._ensure_pool()
                async with pool.acquire() as conn:
                    try:
                        result = await fn(_PostgresTx(conn, lock=False))
                    except Exception as exc:
                        _discard_if_lost(conn, exc)
                        raise
                self._outage.answered()
                return result
            except Exception as exc:
                if _connection_lost(exc):
                    if self._pool is not None and self._pool.is_closing():
                        raise self._closed_error() from exc  # not lost: closed by close()
                    # A read is safe to repeat.
                    self._outage.lost(_reason(exc))
                    now = time.monotonic()
                    lost_at = now if lost_at is None else lost_at
                    if now - lost_at >= self._reconnect_seconds():
                        raise _unreachable(exc, now - lost_at) from exc
                    await asyncio.sleep(_backoff(failures))
                    failures += 1
                    continue
                error = _as_perdure(exc)
                if error is exc:
                    raise
                raise error from exc

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        rows: list[Any] = await self.read(lambda tx: cast(_PostgresTx, tx).c.fetch(sql, *args))
        return rows

    # -- reads ---------------------------------------------------------------------------------
    async def get_history(
        self, run_id: str, after_event_id: int = 0, limit: int | None = None
    ) -> list[HistoryEvent]:
        n = -1 if limit is None else limit
        return await self.read(lambda tx: tx.get_history_events(run_id, after_event_id, n))

    async def next_wakeup(self) -> float | None:
        rows = await self._fetch(
            "SELECT LEAST((SELECT MIN(fire_at) FROM timers), "
            "(SELECT MIN(deadline) FROM tasks WHERE deadline IS NOT NULL), "
            "(SELECT MIN(visible_at) FROM tasks WHERE lease_owner IS NULL AND visible_at > $1), "
            "(SELECT MIN(next_fire) FROM schedules))",
            self.clock.now(),
        )
        return float(rows[0][0]) if rows[0][0] is not None else None

    async def is_idle(self) -> bool:
        if self._queue or self._in_flight:
            return False
        # One statement, one snapshot: no task can move between separate reads unseen.
        rows = await self._fetch(
            "SELECT 'held', NULL, NULL WHERE EXISTS (SELECT 1 FROM tasks WHERE lease_owner IS "
            "NOT NULL AND async_pending = 0) "
            "UNION ALL SELECT 'timer', NULL, NULL WHERE EXISTS (SELECT 1 FROM timers WHERE "
            "fire_at <= $1) OR EXISTS (SELECT 1 FROM schedules WHERE next_fire <= $1) "
            "UNION ALL SELECT DISTINCT namespace, task_queue, kind::text FROM tasks "
            "WHERE lease_owner IS NULL AND visible_at <= $1",
            self.clock.now(),
        )
        if any(r[0] in ("held", "timer") and r[1] is None for r in rows):
            return False
        # A ready task counts only if a worker here polls its queue: nobody will take it
        # otherwise, and its deadlines (schedule-to-start) must still come due.
        polled = self.notifier.listened()
        ready = [k for r in rows if (k := ("queue", r[0], r[1], TaskKind(int(r[2])))) in polled]
        # Wake their pollers: one that polled just before the virtual clock moved would sleep
        # until a virtual deadline that, with this task ready, never comes.
        self.notifier.fire(ready)
        return not ready

    async def activity_running(self) -> bool:
        sql = "SELECT 1 FROM tasks WHERE kind = 2 AND lease_owner IS NOT NULL AND async_pending = 0"
        return bool(await self._fetch(sql + " LIMIT 1"))

    # -- queries -------------------------------------------------------------------------------
    async def get_query_result(self, query_id: int) -> QueryResult | None:
        rows = await self._fetch(
            "SELECT ok, result, error FROM query_results WHERE query_id = $1", query_id
        )
        if not rows:
            return None
        ok, result, error = rows[0]
        payload = decode_attributes(result)["r"] if result is not None else None
        return QueryResult(ok=bool(ok), result=payload, error=error)

    async def closed_among(self, run_ids: Sequence[str]) -> set[str]:
        if not run_ids:
            return set()
        rows = await self._fetch(
            "SELECT run_id FROM executions WHERE status <> 1 AND run_id = ANY($1::text[])",
            list(run_ids),
        )
        return {r[0] for r in rows}

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._opening:  # an open under way finishes first, then is undone
            pass
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher  # what was submitted before closing still commits
        if self._listener_task is not None:
            self._listener_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener_task
            if not self._listen_conn.is_closed():
                self._listen_conn.terminate()
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), CONNECT_TIMEOUT)
            except TimeoutError:
                self._pool.terminate()
        self._wake_on_close()
