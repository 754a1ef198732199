"""Row layouts and converters shared by the SQL stores: the columns of the executions and
tasks tables, and how a database row becomes an ``Execution``, ``TaskRow`` or ``UpdateRow``."""

from __future__ import annotations

from typing import Any

import orjson

from perdure._common.events import decode_attributes, encode_attributes
from perdure._common.status import WorkflowExecutionStatus
from perdure._store._schedule_state import ScheduleRow
from perdure._store._types import Execution, TaskKind, TaskRow, UpdateRow, UpdateState, WftState

EXEC_COLS = (
    "run_id, namespace, workflow_id, workflow_type, task_queue, status, next_event_id, "
    "history_size, start_time, close_time, task_timeout, wft_state, wft_attempt, "
    "cancel_requested, last_failure, close_event, memo, attempt, execution_deadline, "
    "run_timeout, retry_policy, first_run_id, search_attributes, parent, parent_run_id, "
    "updates_requested, reset_points, priority, inputs_buffered, children_started"
)
EXEC_COLUMNS = tuple(c.strip() for c in EXEC_COLS.split(","))
TASK_COLS = (
    "task_id, kind, namespace, task_queue, run_id, workflow_id, ref, visible_at, "
    "lease_seconds, attempt, lease_owner, lease_expires, deadline, final_deadline, "
    "heartbeat_timeout, started_at, data, priority_key, fair_pass, concurrency_key"
)
FAR = 1e18
# The tables whose rows belong to one run, by its run_id column.
RUN_TABLES = (
    "tasks",
    "timers",
    "inbox",
    "history",
    "search_attributes",
    "updates",
    "payload_refs",
    "executions",
)
# The runs' signal idempotency keys (signal_requests rows belong to a run too), found by
# their workflow ids, the table's key prefix: it has no index by run_id.
_SIGNAL_REQUESTS_OF_RUNS = (
    "DELETE FROM signal_requests WHERE run_id {run_ids} AND (namespace, workflow_id) IN "
    "(SELECT namespace, workflow_id FROM executions WHERE run_id {run_ids})"
)

# Closed runs of a namespace (parameter 1) closed before a time (2) that nothing needs any
# more, oldest first, at most a number (the last parameter): not a child whose parent is
# still open (its parent's describe() and links show it), nor a run of a chain (continued
# as new, retried, or reset) whose latest run is still open (result() follows the chain and
# a reset reads it). ``{only}`` may narrow it to some runs; ``{lock}`` locks what it finds.
EXPIRED_RUNS = (
    "SELECT e.run_id FROM executions e WHERE e.namespace = ? AND e.status <> 1 "
    "AND e.close_time < ?{only} "
    "AND NOT EXISTS (SELECT 1 FROM executions p WHERE p.run_id = e.parent_run_id "
    "AND p.status = 1) "
    "AND NOT EXISTS (SELECT 1 FROM executions o WHERE o.namespace = e.namespace "
    "AND o.workflow_id = e.workflow_id AND o.status = 1 AND o.first_run_id = e.first_run_id) "
    "ORDER BY e.close_time LIMIT ?{lock}"
)


def delete_runs_sql(run_ids: str) -> list[str]:
    """The statements that delete runs and every row they own, where ``run_ids`` is the
    dialect's test of a run id against the runs' (``IN (?1, ?2)``, ``= ANY($1)``): the
    answers to the runs' queries first (found by their tasks), then the offloaded payloads
    that only these runs refer to are marked as garbage (for the workers to delete from the
    storage), their signals' keys (found through their executions rows), the executions rows
    last."""
    return [
        "INSERT INTO payload_garbage (key) SELECT DISTINCT r.key FROM payload_refs r "
        f"WHERE r.run_id {run_ids} AND NOT EXISTS (SELECT 1 FROM payload_refs o "
        f"WHERE o.key = r.key AND NOT (o.run_id {run_ids})) ON CONFLICT DO NOTHING",
        "DELETE FROM query_results WHERE query_id IN "
        f"(SELECT task_id FROM tasks WHERE run_id {run_ids} AND kind = 3)",
        _SIGNAL_REQUESTS_OF_RUNS.format(run_ids=run_ids),
        *(f"DELETE FROM {table} WHERE run_id {run_ids}" for table in RUN_TABLES),
    ]


def json_or_none(value: Any) -> bytes | None:
    return None if value is None else orjson.dumps(value)


def from_json(value: bytes | None) -> Any:
    return None if value is None else orjson.loads(value)


def execution_row(row: tuple[Any, ...]) -> Execution:
    return Execution(
        run_id=row[0],
        namespace=row[1],
        workflow_id=row[2],
        workflow_type=row[3],
        task_queue=row[4],
        status=WorkflowExecutionStatus(row[5]),
        next_event_id=row[6],
        history_size=row[7],
        start_time=row[8],
        close_time=row[9],
        task_timeout=row[10],
        wft_state=WftState(row[11]),
        wft_attempt=row[12],
        cancel_requested=bool(row[13]),
        last_failure=decode_attributes(row[14]) if row[14] is not None else None,
        close_event=decode_attributes(row[15]) if row[15] is not None else None,
        memo=decode_attributes(row[16]) if row[16] is not None else None,
        attempt=row[17],
        execution_deadline=row[18],
        run_timeout=row[19],
        retry_policy=from_json(row[20]),
        first_run_id=row[21],
        search_attributes=from_json(row[22]),
        parent=from_json(row[23]),
        updates_requested=bool(row[25]),
        reset_points=from_json(row[26]),
        priority=from_json(row[27]),
        inputs_buffered=bool(row[28]),
        children_started=bool(row[29]),
    )


def task_row(row: tuple[Any, ...]) -> TaskRow:
    return TaskRow(
        task_id=row[0],
        kind=TaskKind(row[1]),
        namespace=row[2],
        task_queue=row[3],
        run_id=row[4],
        workflow_id=row[5],
        ref=row[6],
        visible_at=row[7],
        lease_seconds=row[8],
        attempt=row[9],
        lease_owner=row[10],
        lease_expires=row[11],
        deadline=row[12],
        final_deadline=row[13],
        heartbeat_timeout=row[14],
        started_at=row[15],
        data=decode_attributes(row[16]),
        priority_key=row[17],
        fair_pass=row[18],
        concurrency_key=row[19],
    )


def update_row(row: tuple[Any, ...]) -> UpdateRow:
    blob = decode_attributes(row[3])
    return UpdateRow(
        run_id=row[0],
        update_id=row[1],
        name=row[2],
        input=blob["input"],
        state=UpdateState(row[4]),
        outcome=decode_attributes(row[5]) if row[5] is not None else None,
        header=blob.get("header"),
    )


# An updates row as it is inserted (``update_insert_values`` gives the values).
UPDATE_INSERT = (
    "INSERT INTO updates (run_id, update_id, name, input, state, outcome, requested_at) VALUES ({})"
)


def update_insert_values(row: UpdateRow, now: float) -> tuple[Any, ...]:
    """The values of an updates row, in ``UPDATE_INSERT``'s order (the fourth, the input and
    header, is the blob whose payload references the store notes)."""
    blob = encode_attributes(
        {"input": row.input, "header": row.header} if row.header else {"input": row.input}
    )
    outcome = encode_attributes(row.outcome) if row.outcome is not None else None
    return (row.run_id, row.update_id, row.name, blob, int(row.state), outcome, now)


def execution_values(ex: Execution) -> tuple[Any, ...]:
    """The values of an executions row, in ``EXEC_COLS`` order (plus ``parent_run_id``)."""
    return (
        ex.run_id,
        ex.namespace,
        ex.workflow_id,
        ex.workflow_type,
        ex.task_queue,
        int(ex.status),
        ex.next_event_id,
        ex.history_size,
        ex.start_time,
        ex.close_time,
        ex.task_timeout,
        int(ex.wft_state),
        ex.wft_attempt,
        int(ex.cancel_requested),
        encode_attributes(ex.last_failure) if ex.last_failure is not None else None,
        encode_attributes(ex.close_event) if ex.close_event is not None else None,
        encode_attributes(ex.memo) if ex.memo is not None else None,
        ex.attempt,
        ex.execution_deadline,
        ex.run_timeout,
        json_or_none(ex.retry_policy),
        ex.first_run_id,
        json_or_none(ex.search_attributes),
        json_or_none(ex.parent),
        ex.parent["run_id"] if ex.parent else None,
        int(ex.updates_requested),
        json_or_none(ex.reset_points),
        json_or_none(ex.priority),
        int(ex.inputs_buffered),
        int(ex.children_started),
    )


# The columns of an executions row that change after it is created, in update order.
EXEC_MUTABLE_COLS = (
    "status",
    "next_event_id",
    "history_size",
    "close_time",
    "wft_state",
    "wft_attempt",
    "cancel_requested",
    "last_failure",
    "close_event",
    "memo",
    "search_attributes",
    "updates_requested",
    "reset_points",
    "inputs_buffered",
    "children_started",
)
# Columns no write ever clears: an update sets the larger of the row's value and its own, so
# that a second copy of a run read before the flag was set (in one transaction) cannot undo it.
EXEC_MONOTONIC_COLS = frozenset({"children_started"})


def execution_update_values(ex: Execution) -> tuple[Any, ...]:
    """The values of ``EXEC_MUTABLE_COLS``, then the run id (for the WHERE clause)."""
    return (
        int(ex.status),
        ex.next_event_id,
        ex.history_size,
        ex.close_time,
        int(ex.wft_state),
        ex.wft_attempt,
        int(ex.cancel_requested),
        encode_attributes(ex.last_failure) if ex.last_failure is not None else None,
        encode_attributes(ex.close_event) if ex.close_event is not None else None,
        encode_attributes(ex.memo) if ex.memo is not None else None,
        json_or_none(ex.search_attributes),
        int(ex.updates_requested),
        json_or_none(ex.reset_points),
        int(ex.inputs_buffered),
        int(ex.children_started),
        ex.run_id,
    )


# The columns a new tasks row is written with (task_id is assigned by the database).
TASK_INSERT_COLS = (
    "kind",
    "namespace",
    "task_queue",
    "run_id",
    "workflow_id",
    "ref",
    "visible_at",
    "lease_seconds",
    "attempt",
    "lease_owner",
    "lease_expires",
    "deadline",
    "final_deadline",
    "heartbeat_timeout",
    "started_at",
    "data",
    "priority_key",
    "fair_pass",
    "concurrency_key",
)
# The columns of a tasks row that change after it is created.
TASK_MUTABLE_COLS = (
    "visible_at",
    "attempt",
    "lease_owner",
    "lease_expires",
    "deadline",
    "started_at",
    "data",
)


def task_insert_values(task: TaskRow) -> tuple[Any, ...]:
    """The values of ``TASK_INSERT_COLS``."""
    return (
        int(task.kind),
        task.namespace,
        task.task_queue,
        task.run_id,
        task.workflow_id,
        task.ref,
        task.visible_at,
        task.lease_seconds,
        task.attempt,
        task.lease_owner,
        task.lease_expires,
        task.deadline,
        task.final_deadline,
        task.heartbeat_timeout,
        task.started_at,
        encode_attributes(task.data),
        task.priority_key,
        task.fair_pass,
        task.concurrency_key,
    )


def task_update_values(task: TaskRow) -> tuple[Any, ...]:
    """The values of ``TASK_MUTABLE_COLS``, then the task id (for the WHERE clause)."""
    return (
        task.visible_at,
        task.attempt,
        task.lease_owner,
        task.lease_expires,
        task.deadline,
        task.started_at,
        encode_attributes(task.data),
        task.task_id,
    )


SCHEDULE_COLS = "namespace, schedule_id, data, version, next_fire"


def schedule_row(row: tuple[Any, ...]) -> ScheduleRow:
    return ScheduleRow.from_data(row[0], row[1], decode_attributes(row[2]), row[3], row[4])


def schedule_values(row: ScheduleRow) -> tuple[Any, ...]:
    """The values of ``SCHEDULE_COLS``."""
    return (
        row.namespace,
        row.schedule_id,
        encode_attributes(row.to_data()),
        row.version,
        row.next_fire,
    )
