"""The rules for queries: a query is a task on the run's queue, answered by a worker with
a result row; nothing touches the run's history."""

from __future__ import annotations

from perdure._common.payload import Payload
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import Execution, QueryTask, TaskKind, TaskRow

# How long a worker holds a query before another may answer it instead.
QUERY_LEASE_SECONDS = 10.0


async def insert(
    tx: Tx,
    ex: Execution,
    query_type: str,
    args: list[Payload],
    now: float,
    fx: Effects,
    header: dict[str, Payload] | None = None,
) -> int:
    task = TaskRow(
        task_id=0,
        kind=TaskKind.QUERY,
        namespace=ex.namespace,
        task_queue=ex.task_queue,
        run_id=ex.run_id,
        workflow_id=ex.workflow_id,
        ref=0,
        visible_at=now,
        lease_seconds=QUERY_LEASE_SECONDS,
        # The events the answer must reflect: those recorded when the query was sent.
        data={
            "query_type": query_type,
            "args": args,
            "workflow_type": ex.workflow_type,
            "next_event_id": ex.next_event_id,
        },
    )
    if header:
        task.data["header"] = header
    query_id = await tx.insert_task(task)
    fx.task_ready(ex.namespace, ex.task_queue, TaskKind.QUERY)
    return query_id


async def claim(
    tx: Tx, namespace: str, task_queue: str, owner: str, now: float, limit: int, fx: Effects
) -> list[QueryTask]:
    rows = await tx.claim_tasks(TaskKind.QUERY, namespace, task_queue, owner, now, limit)
    for row in rows:
        fx.wake(row.deadline)
    return [
        QueryTask(
            query_id=r.task_id,
            namespace=r.namespace,
            workflow_id=r.workflow_id,
            run_id=r.run_id,
            workflow_type=r.data["workflow_type"],
            query_type=r.data["query_type"],
            args=r.data["args"],
            owner=owner,
            header=r.data.get("header") or {},
            next_event_id=r.data.get("next_event_id", 1),
        )
        for r in rows
    ]
