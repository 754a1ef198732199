"""The rules for workflow executions: start, signal, cancel, terminate, close.

Written once against the ``Tx`` protocol; every function runs inside one transaction.
"""

from __future__ import annotations

from typing import Any

from perdure._common.events import EventType, HistoryEvent
from perdure._common.status import WorkflowExecutionStatus
from perdure._errors import WorkflowAlreadyStartedError, WorkflowNotFoundError
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import (
    Execution,
    StartResult,
    StartWorkflowRequest,
    TaskKind,
    TaskRow,
    WftState,
)
from perdure.common._enums import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

_CLOSE_STATUS = {
    EventType.WORKFLOW_EXECUTION_COMPLETED: WorkflowExecutionStatus.COMPLETED,
    EventType.WORKFLOW_EXECUTION_FAILED: WorkflowExecutionStatus.FAILED,
    EventType.WORKFLOW_EXECUTION_CANCELED: WorkflowExecutionStatus.CANCELED,
    EventType.WORKFLOW_EXECUTION_TERMINATED: WorkflowExecutionStatus.TERMINATED,
}


async def append(
    tx: Tx, ex: Execution, events: list[tuple[EventType, dict[str, Any]]], now: float
) -> list[HistoryEvent]:
    """Append events to the run's history, numbering them; returns them."""
    out = []
    for event_type, attrs in events:
        out.append(HistoryEvent(ex.next_event_id, event_type, now, attrs))
        ex.next_event_id += 1
    ex.history_size += await tx.append_events(ex.run_id, out)
    return out


async def schedule_workflow_task(
    tx: Tx, ex: Execution, now: float, fx: Effects, *, delay: float = 0.0
) -> None:
    """Make sure the run has a workflow task pending."""
    if ex.wft_state != WftState.NONE or not ex.is_open:
        return
    await tx.insert_task(
        TaskRow(
            task_id=0,
            kind=TaskKind.WORKFLOW,
            namespace=ex.namespace,
            task_queue=ex.task_queue,
            run_id=ex.run_id,
            workflow_id=ex.workflow_id,
            ref=0,
            visible_at=now + delay,
            lease_seconds=ex.task_timeout,
            attempt=max(ex.wft_attempt, 1),
        )
    )
    ex.wft_state = WftState.SCHEDULED
    fx.task_ready(ex.namespace, ex.task_queue, TaskKind.WORKFLOW)


async def deliver(
    tx: Tx,
    ex: Execution,
    events: list[tuple[EventType, dict[str, Any]]],
    now: float,
    fx: Effects,
) -> None:
    """Deliver input events to a run: buffered while its workflow task is in flight (so
    replay sees what the first run saw), else appended with a workflow task to handle them."""
    if ex.wft_state == WftState.STARTED:
        for event_type, attrs in events:
            await tx.inbox_add(ex.run_id, HistoryEvent(0, event_type, now, attrs))
    else:
        await append(tx, ex, events, now)
        await schedule_workflow_task(tx, ex, now, fx)
    await tx.update_execution(ex)


async def flush_inbox(tx: Tx, ex: Execution, now: float) -> bool:
    """Move buffered inputs into history. Returns whether there were any."""
    buffered = await tx.inbox_take(ex.run_id)
    if buffered:
        await append(tx, ex, [(e.event_type, e.attributes) for e in buffered], now)
    return bool(buffered)


async def close(
    tx: Tx,
    ex: Execution,
    event_type: EventType,
    attrs: dict[str, Any],
    now: float,
    fx: Effects,
) -> None:
    """Close the run with its final event and drop its pending work."""
    ex.status = _CLOSE_STATUS[event_type]
    ex.close_time = now
    ex.close_event = {"event_type": event_type.value, "attributes": attrs}
    ex.wft_state = WftState.NONE
    ex.last_failure = None
    await tx.delete_run_work(ex.run_id)
    fx.closed.add(ex.run_id)
    fx.changed = True


async def start_workflow(tx: Tx, req: StartWorkflowRequest, now: float, fx: Effects) -> StartResult:
    running = await tx.get_open_execution(req.namespace, req.workflow_id)
    if running is not None:
        policy = req.id_conflict_policy
        if req.id_reuse_policy == WorkflowIDReusePolicy.TERMINATE_IF_RUNNING:
            policy = WorkflowIDConflictPolicy.TERMINATE_EXISTING
        if policy == WorkflowIDConflictPolicy.USE_EXISTING:
            return StartResult(running.run_id, started=False)
        if policy == WorkflowIDConflictPolicy.FAIL:
            raise WorkflowAlreadyStartedError(
                req.workflow_id, running.workflow_type, run_id=running.run_id
            )
        await terminate(tx, running, "Terminated by a new start (TERMINATE_EXISTING)", "", now, fx)
    elif req.id_reuse_policy in (
        WorkflowIDReusePolicy.REJECT_DUPLICATE,
        WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    ):
        latest = await tx.get_latest_execution(req.namespace, req.workflow_id)
        if latest is not None and (
            req.id_reuse_policy == WorkflowIDReusePolicy.REJECT_DUPLICATE
            or latest.status == WorkflowExecutionStatus.COMPLETED
        ):
            raise WorkflowAlreadyStartedError(
                req.workflow_id, latest.workflow_type, run_id=latest.run_id
            )
    ex = Execution(
        run_id=req.run_id,
        namespace=req.namespace,
        workflow_id=req.workflow_id,
        workflow_type=req.workflow_type,
        task_queue=req.task_queue,
        status=WorkflowExecutionStatus.RUNNING,
        next_event_id=1,
        start_time=now,
        task_timeout=req.task_timeout,
        memo=req.memo,
    )
    await tx.insert_execution(ex)
    await append(
        tx,
        ex,
        [
            (
                EventType.WORKFLOW_EXECUTION_STARTED,
                {
                    "workflow_type": req.workflow_type,
                    "workflow_id": req.workflow_id,
                    "task_queue": req.task_queue,
                    "input": req.input,
                    "attempt": 1,
                    "randomness_seed": req.randomness_seed,
                    "task_timeout": req.task_timeout,
                    "execution_timeout": req.execution_timeout,
                    "run_timeout": req.run_timeout,
                    "memo": req.memo,
                    "identity": req.identity,
                },
            )
        ],
        now,
    )
    await schedule_workflow_task(tx, ex, now, fx)
    await tx.update_execution(ex)
    return StartResult(ex.run_id, started=True)


async def find(
    tx: Tx, namespace: str, workflow_id: str, run_id: str | None, *, must_be_open: bool
) -> Execution:
    ex = (
        await tx.get_execution(run_id)
        if run_id
        else await tx.get_open_execution(namespace, workflow_id)
        or await tx.get_latest_execution(namespace, workflow_id)
    )
    if ex is None or ex.workflow_id != workflow_id or ex.namespace != namespace:
        raise WorkflowNotFoundError(
            f"No workflow execution with id {workflow_id!r}"
            + (f" and run id {run_id!r}" if run_id else "")
        )
    if must_be_open and not ex.is_open:
        raise WorkflowNotFoundError(
            f"Workflow execution {workflow_id!r} (run {ex.run_id}) is already closed "
            f"({ex.status.name})"
        )
    return ex


async def signal(
    tx: Tx,
    namespace: str,
    workflow_id: str,
    run_id: str | None,
    name: str,
    payloads: list[Any],
    identity: str,
    now: float,
    fx: Effects,
) -> None:
    ex = await find(tx, namespace, workflow_id, run_id, must_be_open=True)
    attrs = {"signal_name": name, "input": payloads, "identity": identity}
    await deliver(tx, ex, [(EventType.WORKFLOW_EXECUTION_SIGNALED, attrs)], now, fx)


async def request_cancel(
    tx: Tx,
    namespace: str,
    workflow_id: str,
    run_id: str | None,
    reason: str,
    identity: str,
    now: float,
    fx: Effects,
) -> None:
    ex = await find(tx, namespace, workflow_id, run_id, must_be_open=True)
    if ex.cancel_requested:
        return
    ex.cancel_requested = True
    attrs = {"reason": reason, "identity": identity}
    await deliver(tx, ex, [(EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED, attrs)], now, fx)


async def terminate(
    tx: Tx, ex: Execution, reason: str, identity: str, now: float, fx: Effects
) -> None:
    """Close the run at once; an in-flight workflow task's completion will be refused."""
    await flush_inbox(tx, ex, now)
    attrs = {"reason": reason, "identity": identity}
    await append(tx, ex, [(EventType.WORKFLOW_EXECUTION_TERMINATED, attrs)], now)
    await close(tx, ex, EventType.WORKFLOW_EXECUTION_TERMINATED, attrs, now, fx)
    await tx.update_execution(ex)
