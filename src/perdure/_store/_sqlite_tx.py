"""SQLite's SQL for the store's primitive operations (the ``Tx`` protocol)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from perdure._common.events import EventType, HistoryEvent, decode_attributes, encode_attributes
from perdure._store._rows import (
    EXEC_COLS,
    FAR,
    SCHEDULE_COLS,
    TASK_COLS,
    TASK_INSERT_COLS,
    TASK_MUTABLE_COLS,
    UPDATE_INSERT,
    delete_runs_sql,
    execution_row,
    execution_values,
    schedule_row,
    schedule_values,
    task_insert_values,
    task_row,
    task_update_values,
    update_insert_values,
    update_row,
)
from perdure._store._schedule_state import ScheduleRow
from perdure._store._sqlite_flow import CLAIM_SQL, _SQLiteFlowTx
from perdure._store._sqlite_known import KnownRows
from perdure._store._sqlite_lifecycle import _SQLiteLifecycleTx
from perdure._store._tx import Tx
from perdure._store._types import (
    Execution,
    QueryResult,
    TaskKind,
    TaskRow,
    UpdateRow,
    UpdateState,
    claim_order,
)
from perdure._store._visibility_driver import DRIVER_LIMIT, Driver

_INSERT_TASK = (
    f"INSERT INTO tasks ({', '.join(TASK_INSERT_COLS)}) "
    f"VALUES ({', '.join('?' * len(TASK_INSERT_COLS))})"
)
_UPDATE_TASK = (
    f"UPDATE tasks SET {', '.join(f'{c} = ?' for c in TASK_MUTABLE_COLS)} WHERE task_id = ?"
)
# An id's latest run is the one created last (rowid), whatever the clocks: executions_latest.
LATEST_EXECUTION_SQL = (
    f"SELECT {EXEC_COLS} FROM executions WHERE namespace = ? AND workflow_id = ? "
    "ORDER BY rowid DESC LIMIT 1"
)


class _SQLiteTx(_SQLiteLifecycleTx, _SQLiteFlowTx, Tx):
    """The ``Tx`` primitives in SQLite's SQL. Methods are async only to share the protocol
    with asynchronous backends: none of them suspends."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.c = conn
        self.known = KnownRows()  # forgotten by the store as each transaction begins

    async def get_execution(self, run_id: str) -> Execution | None:
        row = self.c.execute(
            f"SELECT {EXEC_COLS} FROM executions WHERE run_id = ?", (run_id,)
        ).fetchone()
        return self.known.read(execution_row(row), row) if row else None

    async def get_open_execution(self, namespace: str, workflow_id: str) -> Execution | None:
        row = self.c.execute(
            f"SELECT {EXEC_COLS} FROM executions WHERE namespace = ? AND workflow_id = ? "
            "AND status = 1",
            (namespace, workflow_id),
        ).fetchone()
        return self.known.read(execution_row(row), row) if row else None

    async def get_latest_execution(self, namespace: str, workflow_id: str) -> Execution | None:
        row = self.c.execute(LATEST_EXECUTION_SQL, (namespace, workflow_id)).fetchone()
        return self.known.read(execution_row(row), row) if row else None

    async def insert_execution(self, ex: Execution) -> None:
        values = execution_values(ex)
        marks = ", ".join("?" * len(values))
        self.c.execute(f"INSERT INTO executions ({EXEC_COLS}) VALUES ({marks})", values)
        self.known.inserted(ex, values)

    async def update_execution(self, ex: Execution) -> None:
        self.known.buffered.keep(ex)
        update = self.known.update(ex)
        if update is not None:
            self.c.execute(update[0], update[1])
            self.known.written(ex, update[2])

    async def get_executions(self, run_ids: Sequence[str]) -> dict[str, Execution]:
        found = {}
        for run_id in run_ids:
            ex = await self.get_execution(run_id)
            if ex is not None:
                found[run_id] = ex
        return found

    async def update_executions(self, exs: Sequence[Execution]) -> None:
        for ex in exs:
            await self.update_execution(ex)

    async def append_events(self, run_id: str, events: Sequence[HistoryEvent]) -> int:
        rows = [
            (run_id, e.event_id, e.event_type.value, e.event_time, encode_attributes(e.attributes))
            for e in events
        ]
        self.c.executemany(
            "INSERT INTO history (run_id, event_id, event_type, event_time, attributes) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        self._note_payload_refs(run_id, [r[4] for r in rows])
        return sum(len(r[4]) for r in rows)

    async def get_history_events(
        self, run_id: str, after_event_id: int, limit: int
    ) -> list[HistoryEvent]:
        rows = self.c.execute(
            "SELECT event_id, event_type, event_time, attributes FROM history "
            "WHERE run_id = ? AND event_id > ? ORDER BY event_id LIMIT ?",
            (run_id, after_event_id, limit),
        ).fetchall()
        return [HistoryEvent(r[0], EventType(r[1]), r[2], decode_attributes(r[3])) for r in rows]

    async def inbox_add(self, run_id: str, event: HistoryEvent) -> None:
        blob = encode_attributes(event.attributes)
        self.c.execute(
            "INSERT INTO inbox (run_id, event_type, event_time, attributes) VALUES (?, ?, ?, ?)",
            (run_id, event.event_type.value, event.event_time, blob),
        )
        self.known.buffered.added(run_id)
        self._note_payload_refs(run_id, [blob])

    async def inbox_take(self, run_id: str) -> list[HistoryEvent]:
        self.known.buffered.taken(run_id)
        rows = self.c.execute(
            "DELETE FROM inbox WHERE run_id = ? RETURNING seq, event_type, event_time, attributes",
            (run_id,),
        ).fetchall()
        rows.sort(key=lambda r: r[0])
        return [HistoryEvent(0, EventType(r[1]), r[2], decode_attributes(r[3])) for r in rows]

    def inputs_buffered(self, ex: Execution) -> bool:
        return self.known.buffered.buffered(ex)

    async def insert_task(self, task: TaskRow) -> int:
        if task.fairness is not None:
            key, weight = task.fairness
            task.fair_pass = await self.next_fair_pass(
                task.namespace, task.task_queue, task.kind, task.priority_key, key, 1 / weight
            )
        cur = self.c.execute(_INSERT_TASK, task_insert_values(task))
        task.task_id = int(cur.lastrowid or 0)
        return task.task_id

    async def update_task(self, task: TaskRow) -> None:
        self.c.execute(_UPDATE_TASK, task_update_values(task))

    async def delete_task(self, task_id: int) -> None:
        self.c.execute("DELETE FROM tasks WHERE task_id = ?", (task_id,))

    async def get_task(self, task_id: int) -> TaskRow | None:
        row = self.c.execute(
            f"SELECT {TASK_COLS} FROM tasks WHERE task_id = ?", (task_id,)
        ).fetchone()
        return task_row(row) if row else None

    async def get_task_and_execution(
        self, task_id: int, run_id: str
    ) -> tuple[TaskRow | None, Execution | None]:
        return await self.get_task(task_id), await self.get_execution(run_id)

    async def find_task(self, run_id: str, kind: TaskKind, ref: int) -> TaskRow | None:
        row = self.c.execute(
            f"SELECT {TASK_COLS} FROM tasks WHERE run_id = ? AND kind = ? AND ref = ?",
            (run_id, int(kind), ref),
        ).fetchone()
        return task_row(row) if row else None

    async def run_tasks(self, run_id: str, kind: TaskKind) -> list[TaskRow]:
        rows = self.c.execute(
            f"SELECT {TASK_COLS} FROM tasks WHERE run_id = ? AND kind = ? ORDER BY ref",
            (run_id, int(kind)),
        ).fetchall()
        return [task_row(r) for r in rows]

    async def claim_tasks(
        self,
        kind: TaskKind,
        namespace: str,
        task_queue: str,
        owner: str,
        now: float,
        limit: int,
    ) -> list[TaskRow]:
        rows = self.c.execute(
            CLAIM_SQL,
            {
                "owner": owner,
                "now": now,
                "far": FAR,
                "ns": namespace,
                "queue": task_queue,
                "kind": int(kind),
                "limit": limit,
            },
        ).fetchall()
        tasks = [task_row(r) for r in rows]
        tasks.sort(key=claim_order)
        return tasks

    async def due_tasks(self, now: float, limit: int) -> list[TaskRow]:
        rows = self.c.execute(
            f"SELECT {TASK_COLS} FROM tasks WHERE deadline IS NOT NULL AND deadline <= ? "
            "ORDER BY deadline LIMIT ?",
            (now, limit),
        ).fetchall()
        return [task_row(r) for r in rows]

    async def delete_run_work(self, run_id: str) -> None:
        self.c.execute("DELETE FROM tasks WHERE run_id = ? AND kind IN (1, 2)", (run_id,))
        self.c.execute("DELETE FROM timers WHERE run_id = ?", (run_id,))
        self.c.execute("DELETE FROM inbox WHERE run_id = ?", (run_id,))

    async def delete_runs(self, run_ids: Sequence[str]) -> None:
        marks = ", ".join(f"?{i}" for i in range(1, len(run_ids) + 1))
        for sql in delete_runs_sql(f"IN ({marks})"):
            self.c.execute(sql, tuple(run_ids))

    async def set_search_attributes(
        self, run_id: str, values: Mapping[str, list[tuple[str | None, float | None, int | None]]]
    ) -> None:
        for name, rows in values.items():
            self.c.execute(
                "DELETE FROM search_attributes WHERE run_id = ? AND name = ?", (run_id, name)
            )
            self.c.executemany(
                "INSERT INTO search_attributes (run_id, name, value_text, value_num, value_bool) "
                "VALUES (?, ?, ?, ?, ?)",
                [(run_id, name, *row) for row in rows],
            )

    async def mark_async_pending(self, run_id: str, seq: int, attempt: int) -> None:
        self.c.execute(
            "UPDATE tasks SET async_pending = 1 WHERE run_id = ? AND kind = 2 AND ref = ? "
            "AND attempt = ?",
            (run_id, seq, attempt),
        )

    async def move_requested_updates(self, from_run_id: str, to_run_id: str) -> None:
        self.c.execute(
            "UPDATE updates SET run_id = ? WHERE run_id = ? AND state = 0",
            (to_run_id, from_run_id),
        )

    async def open_children(self, parent_run_id: str) -> list[Execution]:
        rows = self.c.execute(
            f"SELECT {EXEC_COLS} FROM executions WHERE parent_run_id = ? AND status = 1",
            (parent_run_id,),
        ).fetchall()
        return [execution_row(r) for r in rows]

    async def search_attribute_types(self, namespace: str) -> dict[str, str]:
        rows = self.c.execute(
            "SELECT name, type FROM search_attribute_types WHERE namespace = ?", (namespace,)
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    async def register_search_attribute(self, namespace: str, name: str, type_name: str) -> None:
        self.c.execute(
            "INSERT OR IGNORE INTO search_attribute_types (namespace, name, type) VALUES (?, ?, ?)",
            (namespace, name, type_name),
        )

    async def list_executions(
        self,
        namespace: str,
        where: str,
        params: list[Any],
        order_by: str,
        limit: int,
        among: Driver | None = None,
    ) -> list[Execution]:
        cols = ", ".join(f"e.{c.strip()}" for c in EXEC_COLS.split(","))
        matching, bound, driven = self._matching(namespace, where, params, among)
        if driven:  # read from the attribute's index, then sorted
            order_by = ", ".join(f"+{term.strip()}" for term in order_by.split(","))
        rows = self.c.execute(
            f"SELECT {cols} {matching} ORDER BY {order_by} LIMIT ?", [*bound, limit]
        ).fetchall()
        return [execution_row(r) for r in rows]

    async def count_executions(
        self,
        namespace: str,
        where: str,
        params: list[Any],
        limit: int | None = None,
        among: Driver | None = None,
    ) -> int:
        matching, bound, _ = self._matching(namespace, where, params, among)
        if limit is None:
            row = self.c.execute(f"SELECT COUNT(*) {matching}", bound).fetchone()
        else:
            row = self.c.execute(
                f"SELECT COUNT(*) FROM (SELECT 1 {matching} LIMIT ?)", [*bound, limit]
            ).fetchone()
        return int(row[0])

    def _matching(
        self, namespace: str, where: str, params: list[Any], among: Driver | None
    ) -> tuple[str, list[Any], bool]:
        """``FROM ... WHERE ...`` of the matching runs, its parameters, and whether it
        starts from the attribute index's rows: when ``among`` holds for few (the namespace
        is then not indexed on, nor, by the caller, the order); else the namespace's indexes
        are."""
        if among is not None:
            few = self.c.execute(
                "SELECT COUNT(*) FROM (SELECT 1 FROM search_attributes sa "
                f"WHERE {among.where} LIMIT ?)",
                [*among.params, DRIVER_LIMIT + 1],
            ).fetchone()[0]
            if few <= DRIVER_LIMIT:
                return (
                    "FROM executions e WHERE +e.namespace = ? AND e.run_id IN "
                    f"(SELECT sa.run_id FROM search_attributes sa WHERE {among.where}) "
                    f"AND ({where})",
                    [namespace, *among.params, *params],
                    True,
                )
        return f"FROM executions e WHERE e.namespace = ? AND ({where})", [namespace, *params], False

    async def count_executions_by(
        self,
        namespace: str,
        where: str,
        params: list[Any],
        column: str,
        among: Driver | None = None,
    ) -> list[tuple[Any, int]]:
        matching, bound, _ = self._matching(namespace, where, params, among)
        rows = self.c.execute(
            f"SELECT {column}, COUNT(*) {matching} GROUP BY {column}", bound
        ).fetchall()
        return [(r[0], int(r[1])) for r in rows]

    async def get_update(self, run_id: str, update_id: str) -> UpdateRow | None:
        row = self.c.execute(
            "SELECT run_id, update_id, name, input, state, outcome FROM updates "
            "WHERE run_id = ? AND update_id = ?",
            (run_id, update_id),
        ).fetchone()
        return update_row(row) if row else None

    async def insert_update(self, row: UpdateRow, now: float) -> None:
        values = update_insert_values(row, now)
        self._note_payload_refs(row.run_id, [values[3]])
        self.c.execute(UPDATE_INSERT.format(", ".join("?" * len(values))), values)

    async def set_update_state(
        self, run_id: str, update_id: str, state: UpdateState, outcome: dict[str, Any] | None
    ) -> None:
        self.c.execute(
            "UPDATE updates SET state = ?, outcome = ? WHERE run_id = ? AND update_id = ?",
            (
                int(state),
                encode_attributes(outcome) if outcome is not None else None,
                run_id,
                update_id,
            ),
        )

    async def updates_in_state(self, run_id: str, states: Sequence[UpdateState]) -> list[UpdateRow]:
        marks = ", ".join("?" * len(states))
        rows = self.c.execute(
            "SELECT run_id, update_id, name, input, state, outcome FROM updates "
            f"WHERE run_id = ? AND state IN ({marks}) ORDER BY requested_at, rowid",
            (run_id, *[int(s) for s in states]),
        ).fetchall()
        return [update_row(r) for r in rows]

    async def insert_timer(
        self, run_id: str, seq: int, fire_at: float, started_event_id: int
    ) -> None:
        self.c.execute(
            "INSERT INTO timers (run_id, seq, fire_at, started_event_id) VALUES (?, ?, ?, ?)",
            (run_id, seq, fire_at, started_event_id),
        )

    async def delete_timer(self, run_id: str, seq: int) -> int | None:
        row = self.c.execute(
            "DELETE FROM timers WHERE run_id = ? AND seq = ? RETURNING started_event_id",
            (run_id, seq),
        ).fetchone()
        return int(row[0]) if row else None

    async def due_timers(self, now: float, limit: int) -> list[tuple[str, int, int]]:
        rows = self.c.execute(
            "SELECT run_id, seq, started_event_id FROM timers WHERE fire_at <= ? "
            "ORDER BY fire_at, run_id, seq LIMIT ?",
            (now, limit),
        ).fetchall()
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    async def delete_query(self, query_id: int) -> None:
        self.c.execute("DELETE FROM tasks WHERE task_id = ?", (query_id,))
        self.c.execute("DELETE FROM query_results WHERE query_id = ?", (query_id,))

    async def put_query_result(self, query_id: int, result: QueryResult) -> None:
        self.c.execute("DELETE FROM tasks WHERE task_id = ?", (query_id,))
        self.c.execute(
            "INSERT OR REPLACE INTO query_results (query_id, ok, result, error) "
            "VALUES (?, ?, ?, ?)",
            (
                query_id,
                int(result.ok),
                encode_attributes({"r": result.result}) if result.result is not None else None,
                result.error,
            ),
        )

    async def get_schedule(self, namespace: str, schedule_id: str) -> ScheduleRow | None:
        row = self.c.execute(
            f"SELECT {SCHEDULE_COLS} FROM schedules WHERE namespace = ? AND schedule_id = ?",
            (namespace, schedule_id),
        ).fetchone()
        return schedule_row(row) if row else None

    async def claim_schedule(
        self, namespace: str, schedule_id: str, now: float
    ) -> ScheduleRow | None:
        row = await self.get_schedule(namespace, schedule_id)
        if row is None or row.next_fire is None or row.next_fire > now:
            return None
        return row

    async def insert_schedule(self, row: ScheduleRow) -> None:
        self.c.execute(
            f"INSERT INTO schedules ({SCHEDULE_COLS}) VALUES (?, ?, ?, ?, ?)", schedule_values(row)
        )

    async def update_schedule(self, row: ScheduleRow) -> None:
        ns, sid, data, version, next_fire = schedule_values(row)
        self.c.execute(
            "UPDATE schedules SET data = ?, version = ?, next_fire = ? "
            "WHERE namespace = ? AND schedule_id = ?",
            (data, version, next_fire, ns, sid),
        )

    async def delete_schedule(self, namespace: str, schedule_id: str) -> bool:
        cur = self.c.execute(
            "DELETE FROM schedules WHERE namespace = ? AND schedule_id = ?",
            (namespace, schedule_id),
        )
        return cur.rowcount > 0

    async def due_schedules(self, now: float, limit: int) -> list[tuple[str, str]]:
        rows = self.c.execute(
            "SELECT namespace, schedule_id FROM schedules WHERE next_fire <= ? "
            "ORDER BY next_fire LIMIT ?",
            (now, limit),
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    async def list_schedules(self, namespace: str, limit: int, offset: int) -> list[ScheduleRow]:
        rows = self.c.execute(
            f"SELECT {SCHEDULE_COLS} FROM schedules WHERE namespace = ? "
            "ORDER BY schedule_id LIMIT ? OFFSET ?",
            (namespace, limit, offset),
        ).fetchall()
        return [schedule_row(r) for r in rows]

    async def open_workflow_ids(self, namespace: str, workflow_ids: Sequence[str]) -> set[str]:
        if not workflow_ids:
            return set()
        marks = ", ".join("?" * len(workflow_ids))
        rows = self.c.execute(
            f"SELECT workflow_id FROM executions WHERE namespace = ? AND status = 1 "
            f"AND workflow_id IN ({marks})",
            (namespace, *workflow_ids),
        ).fetchall()
        return {r[0] for r in rows}
