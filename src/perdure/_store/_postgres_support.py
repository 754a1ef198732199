"""Support for the PostgreSQL store: connection targets, error classification, outages,
notification payloads, and the bookkeeping of a group-committed batch."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
import orjson

from perdure._common.backoff import FailureLog, backoff
from perdure._errors import DatabaseUnavailableError, InvalidURLError, PerdureError
from perdure._store._effects import Effects
from perdure._store._schema_check import VERSION_TABLE, SchemaState
from perdure._store._tx import Tx

log = logging.getLogger("perdure.store")

# Runs of one operation that lost a deadlock or a unique-index race, or of a whole batch
# that failed before it committed for another reason than a lost connection.
MAX_TRIES = 5
# While PostgreSQL cannot be reached (it restarts, fails over, the network is cut) an
# operation is tried again, with backoff, for this long before it fails; once the store is
# closing, for less.
RECONNECT_SECONDS = 60.0
CLOSING_RECONNECT_SECONDS = 2.0
MAX_BACKOFF = 1.0
# deadlock_detected, serialization_failure, unique_violation, lock_not_available (a later
# operation of a batch waited past BATCH_LOCK_TIMEOUT): run the operation again.
LOCK_NOT_AVAILABLE = "55P03"
_RETRY_STATES = frozenset({"40P01", "40001", "23505", LOCK_NOT_AVAILABLE})
# How long an operation after the first of a batch waits for a row lock. Its batch holds the
# locks of the operations before it, taken in their order, which another batch may take in
# another: two such batches deadlock, and PostgreSQL finds it only after `deadlock_timeout`
# (1 s by default), the others in the queue waiting meanwhile. A wait this long (a commit
# takes milliseconds) ends the operation instead; it runs again at the head of the next
# batch, where it waits as long as it must.
BATCH_LOCK_TIMEOUT = "SET LOCAL lock_timeout = 100"
# NOTIFY payloads must stay under 8000 bytes.
_NOTIFY_BYTES = 7000


@dataclass(frozen=True, slots=True)
class _Target:
    dsn: str  # the URL as asyncpg takes it: perdure's own parameters removed
    schema: str | None
    shown: str  # the URL without its password, for messages


def _parse_url(url: str) -> _Target:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    if len(schemas) > 1 or (schemas and not schemas[0]):
        raise InvalidURLError(
            f"PostgreSQL URL {url!r} needs one non-empty schema name in ?schema=NAME"
        )
    rest = [(key, value) for key, value in query if key != "schema"]
    dsn = urlunsplit(parts._replace(query=urlencode(rest)))
    shown = dsn
    if parts.password is not None:
        shown = urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***", 1)))
    return _Target(dsn, schemas[0] if schemas else None, shown)


# A session left inside a transaction this long is ended by the server, which releases its
# row locks: a worker cut off mid-transaction (a network partition that neither heals nor
# resets) would otherwise hold its run's row lock, and stall that run, until TCP gives up on
# the connection (hours, by default). perdure's transactions wait on nothing but their own
# statements (a workflow task run in a commit takes milliseconds).
IDLE_IN_TRANSACTION_SECONDS = 60


def _session_settings(schema: str | None) -> dict[str, str]:
    """The settings of every session of the store's pool."""
    settings = {"idle_in_transaction_session_timeout": f"{IDLE_IN_TRANSACTION_SECONDS}s"}
    if schema:
        settings["search_path"] = _quote(schema)
    return settings


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _channel(schema: str | None) -> str:
    """The NOTIFY channel of one perdure database (channel names are at most 63 bytes)."""
    if schema is None:
        return "perdure"
    name = f"perdure:{schema}"
    if len(name.encode()) > 63:
        name = "perdure:" + hashlib.sha256(schema.encode()).hexdigest()[:32]
    return name


def _lock_key(schema: str | None) -> int:
    digest = hashlib.sha256(f"perdure-migrate:{schema or ''}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _postgres_state(conn: Any) -> SchemaState:
    """What the schema perdure's tables go in (the first of the search path) holds."""
    rows = await conn.fetch(
        "SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
        "AND c.relkind IN ('r', 'p') "
        "AND a.attnum > 0 AND NOT a.attisdropped"
    )
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    versions = None
    if VERSION_TABLE in tables:
        versions = [int(r[0]) for r in await conn.fetch(f"SELECT version FROM {VERSION_TABLE}")]
    return SchemaState(versions, tables)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and exc.sqlstate in _RETRY_STATES


def _lock_wait_ended(exc: BaseException) -> bool:
    """A batch's later operation gave up waiting for a lock (``BATCH_LOCK_TIMEOUT``): not a
    failure of the operation, so it is run again without counting a try."""
    return isinstance(exc, asyncpg.PostgresError) and exc.sqlstate == LOCK_NOT_AVAILABLE


def _connection_lost(exc: BaseException) -> bool:
    """The connection broke (the server restarted, or the connection was killed), or none
    could be opened (the server is down), as opposed to an error of the statement: the server
    refused it (any other ``PostgresError``), or asyncpg did before sending it (an argument it
    cannot encode, more than 32,767 of them), which running the statement again cannot
    mend."""
    if isinstance(exc, DatabaseUnavailableError):
        return True
    # ConnectionDoesNotExistError (the server closed the connection) is one of the first.
    if isinstance(exc, asyncpg.PostgresConnectionError | OSError):
        return True
    # The protocol's state after the server dropped an idle connection.
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        # admin_shutdown, crash_shutdown, cannot_connect_now
        return exc.sqlstate in ("57P01", "57P02", "57P03")
    # asyncpg's plain InterfaceError is also how it refuses a call on a connection it has
    # seen close; its other InterfaceErrors (DataError...) are the statement's.
    return type(exc) is asyncpg.InterfaceError and "connection is closed" in str(exc)


def _backoff(failures: int) -> float:
    """The pause before the next attempt, after ``failures`` attempts failed in a row."""
    return backoff(failures + 1, base=0.05, cap=MAX_BACKOFF)


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {cause}"


def _unreachable(exc: BaseException, seconds: float) -> PerdureError:
    return DatabaseUnavailableError(
        f"PostgreSQL could not be reached for {seconds:.0f}s ({_reason(exc)}); check that the "
        "server is running and reachable",
        cause=exc,
    )


class _Outage(FailureLog):
    """Whether PostgreSQL is out of reach: an outage is logged as it begins, once a minute
    while it lasts and once as it ends, however many operations are tried again meanwhile."""

    first = "%(what)s does not answer (%(error)s); retrying until it does"
    still = "%(what)s still does not answer, after %(seconds).0fs (%(error)s)"
    again = "%(what)s answers again, after %(seconds).1fs"

    def __init__(self, shown: str) -> None:
        super().__init__(log, f"PostgreSQL at {shown}")

    def lost(self, reason: str) -> None:
        self.failed(reason, traceback=False)

    def answered(self) -> None:
        self.recovered()


def _discard_if_lost(conn: Any, exc: BaseException) -> None:
    """Close a broken connection, so the pool opens a new one instead of handing it out."""
    if _connection_lost(exc):
        with contextlib.suppress(Exception):
            conn.terminate()


def _as_perdure(exc: BaseException) -> BaseException:
    """Database errors as ``PerdureError`` (with the driver's error as ``.cause``); the
    rules' own errors unchanged."""
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError | OSError):
        return PerdureError(f"PostgreSQL operation failed: {exc}", cause=exc)
    return exc


def _notifications(fx: Effects) -> list[str]:
    """The committed change's wake-ups, for other processes: JSON arrays of notifier keys,
    packed into payloads that fit a NOTIFY."""
    items: list[list[Any]] = [["queue", ns, q, int(kind)] for ns, q, kind in fx.queues]
    items += [["closed", run_id] for run_id in fx.closed]
    items += [["query", query_id] for query_id in fx.queries]
    items += [list(key) for key in fx.keys]
    items += [["activity_cancel", run_id, seq] for run_id, seq in fx.activity_cancels]
    payloads: list[str] = []
    chunk: list[str] = []
    size = 0
    for item in items:
        text = orjson.dumps(item).decode()
        if chunk and size + len(text) + 1 > _NOTIFY_BYTES:
            payloads.append("[" + ",".join(chunk) + "]")
            chunk, size = [], 0
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        payloads.append("[" + ",".join(chunk) + "]")
    return payloads


@dataclass(frozen=True, slots=True)
class _Server:
    """The run of the server a connection was opened on: a restart changes ``started``, a
    failover to a standby ``timeline`` (None: ``pg_control_checkpoint()`` is not allowed)."""

    started: datetime
    timeline: int | None


async def _server_of(conn: Any) -> _Server:
    try:
        row = await conn.fetchrow(
            "SELECT pg_postmaster_start_time(), timeline_id FROM pg_control_checkpoint()"
        )
    except asyncpg.InsufficientPrivilegeError:
        return _Server(await conn.fetchval("SELECT pg_postmaster_start_time()"), None)
    return _Server(row[0], row[1])


@dataclass(slots=True)
class _Op:
    fn: Callable[[Tx, Effects], Awaitable[Any]]
    future: asyncio.Future[Any]
    tries: int = 0
    lost_at: float | None = None  # when a lost connection first failed it (time.monotonic)


@dataclass(slots=True)
class _BatchRun:
    """One attempt at committing a batch: what each operation did, and how far it got."""

    batch: list[_Op]
    done: list[tuple[_Op, Any, BaseException | None]] = field(default_factory=list)
    again: list[_Op] = field(default_factory=list)
    effects: Effects = field(default_factory=Effects)
    xid: int | None = None
    committing: bool = False
    server: _Server | None = None  # that of the connection it ran on


def _again(batch: list[_Op], exc: BaseException, reconnect_seconds: float) -> list[_Op]:
    """The operations of a batch that failed as a whole (and did not commit) to run again,
    failing those tried too often, or for longer than ``reconnect_seconds`` since a lost
    connection first failed them."""
    retry = []
    now = time.monotonic()
    lost = _connection_lost(exc)
    for op in batch:
        if lost:
            if op.lost_at is None:
                op.lost_at = now
            if now - op.lost_at < reconnect_seconds:
                retry.append(op)
                continue
            error = _unreachable(exc, now - op.lost_at)
        else:
            op.tries += 1
            if op.tries < MAX_TRIES:
                retry.append(op)
                continue
            error = PerdureError(f"PostgreSQL transaction failed: {exc}", cause=exc)
        _settle(op, None, error)
    return retry


async def _keep_session(conn: Any) -> None:
    """Pool connections are returned as they are: the store changes no session state, and
    asyncpg's default reset would cost a round trip per release."""


def _settle(op: _Op, result: Any, error: BaseException | None) -> None:
    if op.future.done():
        return
    if error is not None:
        op.future.set_exception(error)
    else:
        op.future.set_result(result)
