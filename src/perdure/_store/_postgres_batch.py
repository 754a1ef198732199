"""Running a group-committed batch of operations on one PostgreSQL connection, in as few
round trips as the rules allow: no savepoint per operation unless one is needed, and the
writes whose outcome the rules do not read held back and sent together."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]

from perdure._store._effects import Effects
from perdure._store._marks import BufferedRuns
from perdure._store._postgres_rows import LockedRows, TaskIds
from perdure._store._postgres_support import (
    BATCH_LOCK_TIMEOUT,
    MAX_TRIES,
    _as_perdure,
    _BatchRun,
    _connection_lost,
    _lock_wait_ended,
    _notifications,
    _retryable,
)
from perdure._store._rows import TASK_INSERT_COLS, task_insert_values
from perdure._store._tx import Tx
from perdure._store._types import TaskRow

# A task row: its id ($1), then the values of TASK_INSERT_COLS.
INSERT_TASK = (
    f"INSERT INTO tasks (task_id, {', '.join(TASK_INSERT_COLS)}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(TASK_INSERT_COLS) + 2))})"
)
# Parameters $1 to $5: one array per column.
_INSERT_HISTORY = (
    "INSERT INTO history (run_id, event_id, event_type, event_time, attributes) "
    "SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::float8[], $5::bytea[])"
)


def _combine(parts: Sequence[tuple[str, Sequence[Any]]]) -> tuple[str, list[Any]]:
    """Statements as one: all but the last as data-modifying CTEs of the last, their
    parameters numbered after the last statement's own."""
    *before, (last_sql, last_args) = parts
    args = list(last_args)
    shift = len(args)
    ctes: list[str] = []
    for sql, part_args in before:
        ctes.append(f"w{len(ctes)} AS ({_renumber(sql, shift)})")
        args.extend(part_args)
        shift += len(part_args)
    if not ctes:
        return last_sql, args
    return f"WITH {', '.join(ctes)} {last_sql}", args


@functools.lru_cache(maxsize=256)
def _renumber(sql: str, by: int) -> str:
    return re.sub(r"\$(\d+)", lambda m: f"${int(m[1]) + by}", sql) if by else sql


class _BatchTx:
    """The statements of a transaction on one connection, for ``_PostgresTx`` (the ``Tx``
    primitives) to send through, and the running of a batch of operations (``run_batch``).

    Every statement is a round trip. So in a transaction the writes whose outcome the rules
    do not read (an update, a delete, an insert without ``RETURNING``, history events) are
    held back and sent together, as one statement (data-modifying CTEs), just before the
    next statement that reads or must write at once, or when the operation ends; for the
    batch's last operation, with the NOTIFYs and the transaction id (``_finish``). They
    touch different tables (a second write to a table sends the first; a second update of
    a run replaces the first, since each writes the whole row), so the statements of one
    CTE, which all see the same snapshot, cannot see or undo each other's rows. An
    operation that fails before it has written anything needs no savepoint to be undone
    (``changed`` tells).
    """

    def __init__(self, conn: Any, *, lock: bool, ids: TaskIds | None = None) -> None:
        self.c = conn
        # Where new task ids come from (a write transaction's), and the rows its operation
        # holds (see LockedRows: kept only when reads lock).
        self._ids = ids
        self.rows = LockedRows()
        self._locks = lock
        self._for_update = " FOR UPDATE" if lock else ""
        self._skip_locked = " FOR UPDATE SKIP LOCKED" if lock else ""
        self.changed = False
        # History rows appended but not yet written: run_id, event_id, type, time, blob.
        self._events: list[tuple[str, int, str, float, bytes]] = []
        # Writes held back: at most one per table, but for updates of different rows.
        self._held: list[_Held] = []
        # The (run, kind, ref) of the task rows read so far, by task id.
        self._task_keys: dict[int, tuple[str, int, int]] = {}
        self.buffered = BufferedRuns()

    def _seen(self, task: TaskRow) -> TaskRow:
        """Note which row a task id is, for the holding back of writes to it."""
        self._task_keys[task.task_id] = (task.run_id, int(task.kind), task.ref)
        return task

    async def run_batch(self, run: _BatchRun, channel: str) -> None:
        """Run the operations of a group-committed batch in a new transaction, recording each
        one's result, error, or need to be run again in ``run``; then send the batch's
        wake-ups on ``channel`` (delivered at commit) and learn its transaction id
        (``run.xid``). The caller commits."""
        if await self._attempt(run, savepoints=False) and await self._finish(run, channel):
            return
        run.done.clear()
        run.again.clear()
        run.effects = Effects()
        await self._attempt(run, savepoints=True)
        await self._finish(run, channel)

    async def _attempt(self, run: _BatchRun, *, savepoints: bool) -> bool:
        """Run the batch's operations, each in a savepoint or not.

        A savepoint costs a round trip per operation, and is rarely needed: an operation
        that fails before writing anything (a stale completion, a duplicate start) is undone
        by forgetting it. Without savepoints, when one fails after writing, or in a
        statement, the transaction is rolled back and this returns False, for the batch to
        be run again with savepoints (unless no operation before it succeeded: then only it
        is undone, and the others go on). Without savepoints, the last operation's history
        events are left for ``_finish`` to write.
        """
        await self.c.execute("BEGIN; SAVEPOINT op" if savepoints else "BEGIN")
        last = len(run.batch) - 1
        for i, op in enumerate(run.batch):
            # From the second operation on, lock waits are bounded (BATCH_LOCK_TIMEOUT); set
            # before the first one's savepoint is released, so no rollback to a later one
            # undoes it.
            if i and savepoints:
                wait = f"{BATCH_LOCK_TIMEOUT}; " if i == 1 else ""
                await self.c.execute(f"{wait}RELEASE SAVEPOINT op; SAVEPOINT op")
            elif i == 1:
                await self.c.execute(BATCH_LOCK_TIMEOUT)
            fx = Effects()
            self.changed = False
            self._events.clear()
            self._held.clear()
            self.rows.clear()
            self.buffered.clear()
            try:
                result = await op.fn(cast(Tx, self), fx)
                if savepoints or i < last:
                    await self.flush()
            except Exception as exc:
                if _connection_lost(exc):
                    raise
                if savepoints:
                    await self.c.execute("ROLLBACK TO SAVEPOINT op")
                elif self.changed or isinstance(exc, asyncpg.PostgresError):
                    if any(error is None for _, _, error in run.done):
                        await self.c.execute("ROLLBACK")
                        return False
                    await self.c.execute("ROLLBACK; BEGIN")
                self._events.clear()
                self._held.clear()
                self.rows.clear()
                self.buffered.clear()
                if _lock_wait_ended(exc):
                    run.again.append(op)
                elif _retryable(exc) and op.tries + 1 < MAX_TRIES:
                    op.tries += 1
                    run.again.append(op)
                else:
                    run.done.append((op, None, _as_perdure(exc)))
                continue
            run.done.append((op, result, None))
            run.effects.merge(fx)
        return True

    async def _finish(self, run: _BatchRun, channel: str) -> bool:
        """The batch's last statement: the writes still held back, the NOTIFYs, and the
        transaction id. Returns False (the transaction rolled back) if a held write failed:
        the batch is then run again, one savepoint per operation, to learn whose it was."""
        notify = (
            "SELECT txid_current(), (SELECT count(pg_notify($1, m)) FROM unnest($2::text[]) AS m)"
        )
        args: list[Any] = [channel, _notifications(run.effects)]
        parts = self._take_held()
        if not parts:
            row = await self.c.fetchrow(
                notify.replace("txid_current()", "txid_current_if_assigned()"), *args
            )
            run.xid = row[0]
            return True
        sql, args = _combine([*parts, (notify, args)])
        try:
            row = await self.c.fetchrow(sql, *args)
        except asyncpg.PostgresError as exc:
            if _connection_lost(exc):
                raise
            await self.c.execute("ROLLBACK")
            return False
        run.xid = row[0]
        return True

    def _take_held(self, *, history: bool = True) -> list[tuple[str, tuple[Any, ...]]]:
        """The held-back writes (and history events), as statements, forgotten here."""
        parts = [(held.sql, held.args) for held in self._held]
        self._held.clear()
        if history and self._events:
            parts.append((_INSERT_HISTORY, tuple(list(c) for c in zip(*self._events, strict=True))))
            self._events = []
        return parts

    async def flush(self, *, history: bool = True) -> None:
        """Send the writes held back, in one statement. The history events may wait for the
        next flush: no other statement reads or writes the history."""
        parts = self._take_held(history=history)
        if parts:
            sql, args = _combine(parts)
            await self.c.execute(sql, *args)

    async def _hold(
        self, table: str, key: Any, sql: str, *args: Any, tasks: _TaskKeys = None
    ) -> None:
        """Write later (see the class docstring). ``key`` names the row when a later write
        of it replaces this one; ``tasks`` are the (run, kind, ref) of the task rows the
        write may remove or change (None: any)."""
        self.changed = True
        for i, held in enumerate(self._held):
            if held.table == table:
                if key is not None and held.key == key:
                    self._held[i] = _Held(table, key, sql, args, tasks)
                    return
                if key is None or held.key is None:
                    await self.flush(history=False)
                    break
        self._held.append(_Held(table, key, sql, args, tasks))

    async def _hold_task(
        self,
        op: str,
        task_id: int,
        task: tuple[str, int, int],
        sql: str,
        *args: Any,
        row: TaskRow | None = None,
    ) -> None:
        """Write task row ``task_id`` (of run, kind and ref ``task``) later: ``op`` is
        ``insert``, ``update`` (of ``row``) or ``delete``. Writes of different task ids wait
        together; a second write of one task takes the place of the first (an insert then
        an update is the insert of the updated row; an insert then a delete, nothing)."""
        self.changed = True
        key = frozenset({task})
        held_write = _Held("tasks", task_id, sql, args, key, op)
        for i, held in enumerate(self._held):
            if held.table != "tasks":
                continue
            if held.key is None:
                break
            if held.key != task_id:
                continue
            if held.op == "insert" and op == "delete":
                del self._held[i]
                return
            if held.op == "insert" and op == "update" and row is not None:
                values = (task_id, *task_insert_values(row))
                self._held[i] = _Held("tasks", task_id, INSERT_TASK, values, key, "insert")
                return
            if held.op == "update":
                self._held[i] = held_write
                return
            break
        else:
            self._held.append(held_write)
            return
        await self.flush(history=False)
        self._held.append(held_write)

    def _drop_run_tasks(self, run_id: str) -> None:
        """Forget the held writes of the run's workflow and activity task rows: a delete of
        all of them follows."""
        self._held = [
            held
            for held in self._held
            if not (
                held.table == "tasks"
                and held.key is not None
                and held.tasks is not None
                and all(r == run_id and k in (1, 2) for r, k, _ in held.tasks)
            )
        ]

    async def _before(
        self, tables: frozenset[str], *, insert: tuple[str, int, int] | None = None
    ) -> None:
        """Send the held-back writes if the coming statement reads or writes one of their
        tables; for the insert of task ``insert`` (run, kind, ref), only if one may remove
        a row the unique index would not let it stand beside."""
        for held in self._held:
            if held.table not in tables:
                continue
            if insert is not None and held.table == "tasks" and not _may_clash(held, insert):
                continue
            await self.flush(history=False)
            return

    async def _fetch(self, tables: frozenset[str], sql: str, *args: Any) -> Any:
        await self._before(tables)
        return await self.c.fetch(sql, *args)

    async def _fetchval(self, tables: frozenset[str], sql: str, *args: Any) -> Any:
        await self._before(tables)
        return await self.c.fetchval(sql, *args)

    async def _write(self, tables: frozenset[str], sql: str, *args: Any) -> None:
        """Write now (after the held-back writes to these tables)."""
        self.changed = True
        await self._before(tables)
        await self.c.execute(sql, *args)

    async def _one(self, tables: frozenset[str], sql: str, *args: Any) -> Any:
        await self._before(tables)
        return await self.c.fetchrow(sql, *args)


# The (run_id, kind, ref) of task rows a held write may remove or change; kind None: every
# workflow and activity task of the run; None: any row.
_TaskKeys = frozenset[tuple[str, int | None, int | None]] | None


@dataclass(frozen=True, slots=True)
class _Held:
    """A write held back."""

    table: str
    key: Any
    sql: str
    args: tuple[Any, ...]
    tasks: _TaskKeys
    op: str = ""  # of a task row held by its id: insert, update or delete


def _may_clash(held: _Held, insert: tuple[str, int, int]) -> bool:
    """Whether task row ``insert`` may clash, in the unique index of workflow and activity
    tasks by (run, kind, ref), with a row that ``held`` removes or changes."""
    run_id, kind, ref = insert
    if kind not in (1, 2):  # queries are not in that index
        return False
    if held.tasks is None:
        return True
    return any(r == run_id and (k is None or (k, f) == (kind, ref)) for r, k, f in held.tasks)
