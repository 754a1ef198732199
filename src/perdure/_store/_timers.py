"""The rules for time: durable timers firing, and deadlines of tasks passing."""

from __future__ import annotations

from perdure._common.events import EventType
from perdure._store import _activities as activities
from perdure._store import _crash as crash
from perdure._store import _executions as executions
from perdure._store import _starts as starts
from perdure._store import _workflow_tasks as workflow_tasks
from perdure._store._eager import EagerFired
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import TaskKind


async def fire_due(
    tx: Tx, now: float, limit: int, fx: Effects, eager: EagerFired | None = None
) -> int:
    """Fire timers and act on task deadlines due by ``now``; returns how many were handled.
    The workflow tasks the timers schedule are leased to the workers offering ``eager``,
    as far as their offers go."""
    handled = 0
    for run_id, seq, started_event_id in await tx.due_timers(now, limit):
        await tx.delete_timer(run_id, seq)
        if crash.hook is not None:
            crash.hook("after_timer_claim")
        ex = await tx.get_execution(run_id)
        handled += 1
        if ex is None or not ex.is_open:
            continue
        if seq == executions.RUN_TIMEOUT_SEQ:
            await starts.timed_out(tx, ex, now, fx)
            continue
        attrs = {"seq": seq, "started_event_id": started_event_id}
        grant = None if eager is None else eager.slot(ex.namespace, ex.task_queue)
        events = [(EventType.TIMER_FIRED, attrs)]
        await executions.deliver(tx, ex, events, now, fx, None if grant is None else grant[1])
        if eager is not None and grant is not None:
            eager.took(*grant)
    for row in await tx.due_tasks(now, limit):
        handled += 1
        if row.kind == TaskKind.WORKFLOW:
            await workflow_tasks.lease_expired(tx, row, now, fx)
        elif row.kind == TaskKind.ACTIVITY:
            await activities.deadline_passed(tx, row, now, fx)
        else:  # a query whose worker vanished: let another answer it
            row.lease_owner = None
            row.lease_expires = None
            row.deadline = None
            row.visible_at = now
            await tx.update_task(row)
            fx.task_ready(row.namespace, row.task_queue, TaskKind.QUERY)
    return handled


async def expire_leases(
    tx: Tx, owner: str, keep: frozenset[tuple[str, int]], now: float, fx: Effects
) -> int:
    """Act now as if every lease ``owner`` holds had run out: its worker is dead (the test
    kit's crash injection). Workflow tasks go back to their queue; activity attempts time out
    (start-to-close) and retry by their policy. Activities in ``keep`` (handed to an outside
    system for async completion) keep their lease, as they would through a real crash."""
    expired = 0
    # Every held task has a deadline (its lease's end at the latest), so this finds them all.
    for row in await tx.due_tasks(float("inf"), 1_000_000):
        if row.lease_owner != owner:
            continue
        if row.kind == TaskKind.ACTIVITY and (row.run_id, row.ref) in keep:
            continue
        expired += 1
        if row.kind == TaskKind.WORKFLOW:
            await workflow_tasks.lease_expired(tx, row, now, fx)
        elif row.kind == TaskKind.ACTIVITY:
            row.lease_expires = now
            await activities.deadline_passed(tx, row, now, fx)
        else:
            row.lease_owner = None
            row.lease_expires = None
            row.deadline = None
            row.visible_at = now
            await tx.update_task(row)
            fx.task_ready(row.namespace, row.task_queue, TaskKind.QUERY)
    return expired
