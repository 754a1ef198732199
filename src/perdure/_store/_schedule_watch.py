"""A run a schedule started closes: the schedule learns it in the same transaction.

Called by ``_executions.close`` for a run carrying ``TemporalScheduledById`` when its chain
ends (it did not continue as new, retry or get reset into a new run). The schedule stops
counting it as running, pauses if it failed and ``pause_on_failure`` says so (Temporal's
rule: a failure or a timeout, after all retries), and is due at once if starts were
waiting for it to close.
"""

from __future__ import annotations

from perdure._common.status import WorkflowExecutionStatus
from perdure._store._effects import Effects
from perdure._store._schedule_state import SCHEDULED_BY_ID
from perdure._store._tx import Tx
from perdure._store._types import Execution


async def run_closed(tx: Tx, ex: Execution, now: float, fx: Effects) -> None:
    entry = (ex.search_attributes or {}).get(SCHEDULED_BY_ID)
    if not entry or not entry.get("values"):
        return
    row = await tx.get_schedule(ex.namespace, str(entry["values"][0]))
    if row is None or all(wid != ex.workflow_id for wid, _ in row.running):
        return
    row.running = [r for r in row.running if r[0] != ex.workflow_id]
    failed = ex.status in (WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TIMED_OUT)
    if row.pause_on_failure and failed and not row.paused:
        row.paused = True
        row.version += 1
        if ex.status == WorkflowExecutionStatus.FAILED:
            failure = ((ex.close_event or {}).get("attributes") or {}).get("failure") or {}
            message = failure.get("message", "")
            row.note = f"paused due to workflow failure: {ex.workflow_id}: {message}"
        else:
            row.note = f"paused due to workflow timeout: {ex.workflow_id}"
    row.next_fire = row.due(now)
    fx.wake(row.next_fire)
    await tx.update_schedule(row)
