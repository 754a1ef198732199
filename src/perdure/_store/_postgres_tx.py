"""PostgreSQL's SQL for the store's primitive operations (the ``Tx`` protocol)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from perdure._common.events import EventType, HistoryEvent, decode_attributes, encode_attributes
from perdure._store._postgres_batch import INSERT_TASK
from perdure._store._postgres_flow import CLAIM_SQL, CLAIM_WITH_RUNS_SQL, _PostgresFlowTx
from perdure._store._postgres_schedules import _ScheduleTx
from perdure._store._postgres_tables import _PostgresTablesTx
from perdure._store._postgres_visibility import _PostgresVisibilityTx
from perdure._store._rows import (
    EXEC_COLS,
    EXEC_COLUMNS,
    EXEC_MONOTONIC_COLS,
    EXEC_MUTABLE_COLS,
    TASK_COLS,
    TASK_INSERT_COLS,
    TASK_MUTABLE_COLS,
    delete_runs_sql,
    execution_row,
    execution_update_values,
    execution_values,
    task_insert_values,
    task_row,
    task_update_values,
)
from perdure._store._tx import Tx
from perdure._store._types import (
    Execution,
    TaskKind,
    TaskRow,
    claim_order,
)

EXEC_COLS_E = ", ".join(f"e.{c.strip()}" for c in EXEC_COLS.split(","))
_CHILDREN_STARTED = EXEC_COLUMNS.index("children_started")
_TASK_WIDTH = len(TASK_COLS.split(","))
# The tables a statement reads or writes: the held-back writes to them are sent before it.
_EXECUTIONS = frozenset({"executions"})
_TASKS = frozenset({"tasks"})
_TASKS_AND_EXECUTIONS = _TASKS | _EXECUTIONS
_INBOX = frozenset({"inbox"})
_HISTORY = frozenset({"history"})
_SEARCH_ATTRIBUTES = frozenset({"search_attributes"})
_SEARCH_ATTRIBUTE_TYPES = frozenset({"search_attribute_types"})
_VISIBILITY = _EXECUTIONS | _SEARCH_ATTRIBUTES
# "Open", written so that no partial index of open runs (``WHERE status = 1``) can serve it:
# before statistics exist (a new database; ANALYZE has not run) the planner rates them all
# alike and may pick executions_open_by_type, reading every open run of the namespace to
# find one (7 ms a start with 2,000 runs open, found by benchmarks/pg_cpu_split.py); this
# way it reads the runs of one workflow id (or one parent), tests/store/test_postgres_plans.py.
_OPEN = "status + 0 = 1"
OPEN_EXECUTION_SQL = (
    f"SELECT {EXEC_COLS} FROM executions WHERE namespace = $1 AND workflow_id = $2 AND {_OPEN}"
)
# The latest run of an id is the one created last (seq, from a sequence: it grows with each
# insert), not the one with the latest start_time, which a clock set back between two runs, or
# a second machine with a slower clock, would make older. One backward scan of
# executions_latest (namespace, workflow_id, seq), stopped at its first row.
LATEST_EXECUTION_SQL = (
    f"SELECT {EXEC_COLS} FROM executions WHERE namespace = $1 AND workflow_id = $2 "
    "ORDER BY seq DESC LIMIT 1"
)
# The update of many runs: one array per column of EXEC_MUTABLE_COLS, then the run ids.
_MUTABLE_TYPES = dict(
    status="int", next_event_id="int8", history_size="int8", close_time="float8",
    wft_state="int", wft_attempt="int", cancel_requested="int", last_failure="bytea",
    close_event="bytea", memo="bytea", search_attributes="bytea", updates_requested="int",
    reset_points="bytea", inputs_buffered="int", children_started="int",
)  # fmt: skip
_UPDATE_EXECUTIONS = (
    "UPDATE executions e SET "
    + ", ".join(
        f"{c} = GREATEST(e.{c}, v.{c})" if c in EXEC_MONOTONIC_COLS else f"{c} = v.{c}"
        for c in EXEC_MUTABLE_COLS
    )
    + " FROM unnest("
    + ", ".join(f"${i}::{_MUTABLE_TYPES[c]}[]" for i, c in enumerate(EXEC_MUTABLE_COLS, 1))
    + f", ${len(EXEC_MUTABLE_COLS) + 1}::text[]) AS v({', '.join(EXEC_MUTABLE_COLS)}, run_id) "
    "WHERE e.run_id = v.run_id"
)
_INSERT_TASK = (
    f"INSERT INTO tasks ({', '.join(TASK_INSERT_COLS)}) VALUES "
    f"({', '.join(f'${i}' for i in range(1, len(TASK_INSERT_COLS) + 1))}) RETURNING task_id"
)
_UPDATE_TASK = (
    "UPDATE tasks SET "
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(TASK_MUTABLE_COLS, 1))
    + f" WHERE task_id = ${len(TASK_MUTABLE_COLS) + 1}"
)
_UPDATE_EXECUTION = (
    "UPDATE executions SET "
    + ", ".join(
        f"{c} = GREATEST({c}, ${i})" if c in EXEC_MONOTONIC_COLS else f"{c} = ${i}"
        for i, c in enumerate(EXEC_MUTABLE_COLS, 1)
    )
    + f" WHERE run_id = ${len(EXEC_MUTABLE_COLS) + 1}"
)


class _PostgresTx(_PostgresTablesTx, _PostgresFlowTx, _ScheduleTx, _PostgresVisibilityTx, Tx):
    """The ``Tx`` primitives in PostgreSQL's SQL, on one connection (what ``_BatchTx`` holds
    back and when is described there).

    In a write transaction (``lock=True``) the reads of rows the rules go on to change lock
    them, so two processes working on one run take turns; reads outside one take no locks.
    """

    async def get_execution(self, run_id: str) -> Execution | None:
        known = self.rows.execution(run_id)
        if known is not None:
            return known
        row = await self._one(
            _EXECUTIONS,
            f"SELECT {EXEC_COLS} FROM executions WHERE run_id = $1{self._for_update}",
            run_id,
        )
        return self._locked_execution(row)

    def _locked_execution(self, row: Any) -> Execution | None:
        if not row:
            return None
        if self._locks:
            self.rows.put_execution_row(row)
        return execution_row(row)

    async def get_open_execution(self, namespace: str, workflow_id: str) -> Execution | None:
        row = await self._one(
            _EXECUTIONS, OPEN_EXECUTION_SQL + self._for_update, namespace, workflow_id
        )
        return self._locked_execution(row)

    async def get_latest_execution(self, namespace: str, workflow_id: str) -> Execution | None:
        row = await self._one(
            _EXECUTIONS,
            LATEST_EXECUTION_SQL + self._for_update,
            namespace,
            workflow_id,
        )
        return self._locked_execution(row)

    async def insert_execution(self, ex: Execution) -> None:
        values = execution_values(ex)
        marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        await self._hold(
            "executions", None, f"INSERT INTO executions ({EXEC_COLS}) VALUES ({marks})", *values
        )
        self.rows.put_execution(ex)

    def _keep_marks(self, ex: Execution) -> None:
        """The run's marks another copy of it set in this operation stay set: writes of one
        run held back replace each other (see ``Tx.inbox_add`` and EXEC_MONOTONIC_COLS)."""
        self.buffered.keep(ex)
        row = self.rows.executions.get(ex.run_id)
        if row is not None and row[_CHILDREN_STARTED]:
            ex.children_started = True

    async def update_execution(self, ex: Execution) -> None:
        self._keep_marks(ex)
        await self._hold("executions", ex.run_id, _UPDATE_EXECUTION, *execution_update_values(ex))
        self.rows.put_execution(ex)

    async def get_executions(self, run_ids: Sequence[str]) -> dict[str, Execution]:
        if not run_ids:
            return {}
        if self._locks and all(r in self.rows.executions for r in run_ids):
            return {r: cast(Execution, self.rows.execution(r)) for r in run_ids}
        # Locked in one order, whoever takes them.
        rows = await self._fetch(
            _EXECUTIONS,
            f"SELECT {EXEC_COLS} FROM executions WHERE run_id = ANY($1::text[]) "
            f"ORDER BY run_id{self._for_update}",
            list(run_ids),
        )
        return {r[0]: cast(Execution, self._locked_execution(r)) for r in rows}

    async def update_executions(self, exs: Sequence[Execution]) -> None:
        if len(exs) == 1:
            await self.update_execution(exs[0])
        elif exs:
            for ex in exs:
                self._keep_marks(ex)
            # One statement, held back like the update of one run.
            values = zip(*(execution_update_values(ex) for ex in exs), strict=True)
            await self._hold("executions", None, _UPDATE_EXECUTIONS, *(list(c) for c in values))
            for ex in exs:
                self.rows.put_execution(ex)

    async def append_events(self, run_id: str, events: Sequence[HistoryEvent]) -> int:
        blobs = [encode_attributes(e.attributes) for e in events]
        for e, blob in zip(events, blobs, strict=True):
            self._events.append((run_id, e.event_id, e.event_type.value, e.event_time, blob))
        self.changed = self.changed or bool(events)
        await self._note_payload_refs(run_id, blobs)
        return sum(map(len, blobs))

    async def get_history_events(
        self, run_id: str, after_event_id: int, limit: int
    ) -> list[HistoryEvent]:
        await self.flush()
        rows = await self._fetch(
            _HISTORY,
            "SELECT event_id, event_type, event_time, attributes FROM history "
            "WHERE run_id = $1 AND event_id > $2 ORDER BY event_id LIMIT $3",
            run_id,
            after_event_id,
            limit if limit >= 0 else None,
        )
        return [HistoryEvent(r[0], EventType(r[1]), r[2], decode_attributes(r[3])) for r in rows]

    async def inbox_add(self, run_id: str, event: HistoryEvent) -> None:
        blob = encode_attributes(event.attributes)
        await self._note_payload_refs(run_id, [blob])
        await self._hold(
            "inbox",
            None,
            "INSERT INTO inbox (run_id, event_type, event_time, attributes) "
            "VALUES ($1, $2, $3, $4)",
            run_id,
            event.event_type.value,
            event.event_time,
            blob,
        )
        self.buffered.added(run_id)

    async def inbox_take(self, run_id: str) -> list[HistoryEvent]:
        self.changed = True
        self.buffered.taken(run_id)
        rows = await self._fetch(
            _INBOX,
            "DELETE FROM inbox WHERE run_id = $1 RETURNING seq, event_type, event_time, attributes",
            run_id,
        )
        rows = sorted(rows, key=lambda r: r[0])
        return [HistoryEvent(0, EventType(r[1]), r[2], decode_attributes(r[3])) for r in rows]

    def inputs_buffered(self, ex: Execution) -> bool:
        return self.buffered.buffered(ex)

    async def insert_task(self, task: TaskRow) -> int:
        if task.fairness is not None:
            fairness_key, weight = task.fairness
            task.fair_pass = await self.next_fair_pass(
                task.namespace,
                task.task_queue,
                task.kind,
                task.priority_key,
                fairness_key,
                1 / weight,
            )
        self.changed = True
        key = (task.run_id, int(task.kind), task.ref)
        await self._before(_TASKS, insert=key)
        if self._ids is None:
            task.task_id = int(await self.c.fetchval(_INSERT_TASK, *task_insert_values(task)))
        else:
            # Its id known, the insert waits to be sent with the transaction's next statement.
            task.task_id = await self._ids.take(self.c)
            values = task_insert_values(task)
            await self._hold_task("insert", task.task_id, key, INSERT_TASK, task.task_id, *values)
        self.rows.put_task(task)
        self._seen(task)
        return task.task_id

    async def update_task(self, task: TaskRow) -> None:
        key = (task.run_id, int(task.kind), task.ref)
        values = task_update_values(task)
        await self._hold_task("update", task.task_id, key, _UPDATE_TASK, *values, row=task)
        self.rows.put_task(task)

    async def delete_task(self, task_id: int) -> None:
        known = self._task_keys.get(task_id)
        delete = "DELETE FROM tasks WHERE task_id = $1"
        if known is None:
            await self._hold("tasks", None, delete, task_id)
        else:
            await self._hold_task("delete", task_id, known, delete, task_id)
        self.rows.task_deleted(task_id)

    def _locked_task(self, row: Any) -> TaskRow:
        if self._locks:
            self.rows.put_task_row(row)
        return self._seen(task_row(row))

    async def get_task(self, task_id: int) -> TaskRow | None:
        if self.rows.has_task(task_id):
            known = self.rows.task(task_id)
            return self._seen(known) if known is not None else None
        row = await self._one(
            _TASKS, f"SELECT {TASK_COLS} FROM tasks WHERE task_id = $1{self._for_update}", task_id
        )
        return self._locked_task(row) if row else None

    async def get_task_and_execution(
        self, task_id: int, run_id: str
    ) -> tuple[TaskRow | None, Execution | None]:
        ex = self.rows.execution(run_id)
        if ex is not None and self.rows.has_task(task_id):
            return await self.get_task(task_id), ex
        # Task row first, then the run's, as every operation takes them.
        row = await self._one(
            _TASKS_AND_EXECUTIONS,
            f"WITH t AS (SELECT {TASK_COLS} FROM tasks WHERE task_id = $1{self._for_update}), "
            f"e AS (SELECT {EXEC_COLS} FROM executions WHERE run_id = $2{self._for_update}) "
            "SELECT t.*, e.* FROM (SELECT) AS one LEFT JOIN t ON TRUE LEFT JOIN e ON TRUE",
            task_id,
            run_id,
        )
        task, ex_row = row[:_TASK_WIDTH], row[_TASK_WIDTH:]
        return (
            self._locked_task(task) if task[0] is not None else None,
            self._locked_execution(ex_row) if ex_row[0] is not None else None,
        )

    async def find_task(self, run_id: str, kind: TaskKind, ref: int) -> TaskRow | None:
        known = self.rows.find_task(run_id, int(kind), ref)
        if known is not None:
            return self._seen(known)
        row = await self._one(
            _TASKS,
            f"SELECT {TASK_COLS} FROM tasks WHERE run_id = $1 AND kind = $2 AND ref = $3"
            f"{self._for_update}",
            run_id,
            int(kind),
            ref,
        )
        return self._locked_task(row) if row else None

    async def run_tasks(self, run_id: str, kind: TaskKind) -> list[TaskRow]:
        sql = f"SELECT {TASK_COLS} FROM tasks WHERE run_id = $1 AND kind = $2 ORDER BY ref"
        rows = await self._fetch(_TASKS, sql + self._for_update, run_id, int(kind))
        return [self._locked_task(r) for r in rows]

    async def claim_tasks(
        self,
        kind: TaskKind,
        namespace: str,
        task_queue: str,
        owner: str,
        now: float,
        limit: int,
    ) -> list[TaskRow]:
        # The CTE picks at most ``limit`` rows and locks them, skipping rows another claim
        # has locked; LEAST ignores the NULL deadlines. A workflow task's run is read next
        # (and locked): it comes with the claim.
        self.changed = True
        with_runs = kind == TaskKind.WORKFLOW and self._locks
        rows = await self._fetch(
            _TASKS_AND_EXECUTIONS if with_runs else _TASKS,
            CLAIM_WITH_RUNS_SQL if with_runs else CLAIM_SQL,
            owner,
            now,
            namespace,
            task_queue,
            int(kind),
            limit,
        )
        if with_runs:
            for r in rows:
                if r[_TASK_WIDTH] is not None:
                    self.rows.put_execution_row(r[_TASK_WIDTH:])
        tasks = [self._locked_task(r[:_TASK_WIDTH]) for r in rows]
        tasks.sort(key=claim_order)
        return tasks

    async def due_tasks(self, now: float, limit: int) -> list[TaskRow]:
        rows = await self._fetch(
            _TASKS,
            f"SELECT {TASK_COLS} FROM tasks WHERE deadline IS NOT NULL AND deadline <= $1 "
            f"ORDER BY deadline LIMIT $2{self._skip_locked}",
            now,
            limit,
        )
        return [self._locked_task(r) for r in rows]

    async def mark_async_pending(self, run_id: str, seq: int, attempt: int) -> None:
        await self._hold(
            "tasks",
            None,
            "UPDATE tasks SET async_pending = 1 WHERE run_id = $1 AND kind = 2 AND ref = $2 "
            "AND attempt = $3",
            run_id,
            seq,
            attempt,
            tasks=frozenset({(run_id, int(TaskKind.ACTIVITY), seq)}),
        )

    async def delete_run_work(self, run_id: str) -> None:
        self._drop_run_tasks(run_id)  # the writes of those rows held back: now needless
        self.rows.forget_tasks(run_id)
        delete = "DELETE FROM tasks WHERE run_id = $1 AND kind IN (1, 2)"
        await self._hold("tasks", None, delete, run_id, tasks=frozenset({(run_id, None, None)}))
        await self._hold("timers", None, "DELETE FROM timers WHERE run_id = $1", run_id)
        await self._hold("inbox", None, "DELETE FROM inbox WHERE run_id = $1", run_id)

    async def delete_runs(self, run_ids: Sequence[str]) -> None:
        self.changed = True
        self.rows.clear()
        await self.flush()  # the held writes and history events first: they may be the runs'
        for sql in delete_runs_sql("= ANY($1::text[])"):  # a batch of runs: 11 round trips
            await self.c.execute(sql, list(run_ids))

    async def open_children(self, parent_run_id: str) -> list[Execution]:
        # An update of the parent's own row held back cannot change which runs are its
        # children: only other writes of executions are sent first.
        if any(h.table == "executions" and h.key != parent_run_id for h in self._held):
            await self.flush(history=False)
        rows = await self.c.fetch(
            f"SELECT {EXEC_COLS} FROM executions WHERE parent_run_id = $1 AND {_OPEN}",
            parent_run_id,
        )
        return [execution_row(r) for r in rows]
