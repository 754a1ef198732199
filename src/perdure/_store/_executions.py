"""The rules for a workflow execution's life once it runs: its history and workflow tasks,
signal, cancel, terminate, close (telling its parent, its children's parent close policy).
Starts, continue-as-new and retries are in ``_starts``.

Written once against the ``Tx`` protocol; every function runs inside one transaction.
"""

from __future__ import annotations

from typing import Any

from perdure._common.events import EventType, HistoryEvent
from perdure._common.failure import EngineFailure
from perdure._common.status import WorkflowExecutionStatus
from perdure._errors import WorkflowNotFoundError
from perdure._store import _crash as crash
from perdure._store import _schedule_watch as schedule_watch
from perdure._store._eager import EagerWorkflowTask, lease
from perdure._store._effects import Effects
from perdure._store._flow import apply_priority
from perdure._store._tx import Tx
from perdure._store._types import (
    Execution,
    TaskKind,
    TaskRow,
    UpdateState,
    WftState,
    WorkflowTask,
)

_CLOSE_STATUS = {
    EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW: WorkflowExecutionStatus.CONTINUED_AS_NEW,
    EventType.WORKFLOW_EXECUTION_TIMED_OUT: WorkflowExecutionStatus.TIMED_OUT,
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
    tx: Tx,
    ex: Execution,
    now: float,
    fx: Effects,
    *,
    delay: float = 0.0,
    eager: EagerWorkflowTask | None = None,
    appended: list[HistoryEvent] | None = None,
) -> None:
    """Make sure the run has a workflow task pending (leased at once to the worker whose
    offer ``eager`` is this operation's grant for, if it wants it, with ``appended``, the
    events just appended, if any)."""
    if ex.wft_state != WftState.NONE or not ex.is_open:
        return
    row = TaskRow(
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
    apply_priority(row, ex.priority)
    if (
        eager is not None
        and eager.granted is None
        and not delay
        and ex.task_queue == eager.offer.task_queue
        and ex.namespace == eager.offer.namespace
        and eager.offer.accept(ex.run_id, ex.workflow_type)
    ):
        owner = eager.offer.owner
        lease(row, owner, now)
        ex.wft_state = WftState.STARTED
        if eager.offer.then is not None and row.fairness is None:
            eager.unwritten = (row, ex)  # written only if not run in this transaction
        else:
            await tx.insert_task(row)
            fx.wake(row.deadline)
        eager.granted = workflow_task(row, ex, owner, now)
        if appended and appended[-1].event_id == ex.next_event_id - 1:
            eager.granted.new_events = appended
        return
    await tx.insert_task(row)
    ex.wft_state = WftState.SCHEDULED
    fx.task_ready(ex.namespace, ex.task_queue, TaskKind.WORKFLOW)


def workflow_task(row: TaskRow, ex: Execution, owner: str, now: float) -> WorkflowTask:
    """The task a worker runs, from its row as leased to ``owner`` at ``now``."""
    return WorkflowTask(
        task_id=row.task_id,
        namespace=ex.namespace,
        workflow_id=ex.workflow_id,
        run_id=ex.run_id,
        workflow_type=ex.workflow_type,
        task_queue=ex.task_queue,
        attempt=row.attempt,
        started_time=now,
        next_event_id=ex.next_event_id,
        history_size=ex.history_size,
        owner=owner,
        lease_seconds=row.lease_seconds,
        updates_requested=ex.updates_requested,
    )


async def deliver(
    tx: Tx,
    ex: Execution,
    events: list[tuple[EventType, dict[str, Any]]],
    now: float,
    fx: Effects,
    eager: EagerWorkflowTask | None = None,
) -> None:
    """Deliver input events to a run: buffered while its workflow task is in flight (so
    replay sees what the first run saw), else appended with a workflow task to handle them."""
    if ex.wft_state == WftState.STARTED:
        for event_type, attrs in events:
            await tx.inbox_add(ex.run_id, HistoryEvent(0, event_type, now, attrs))
        ex.inputs_buffered = True
    else:
        new = await append(tx, ex, events, now)
        await schedule_workflow_task(tx, ex, now, fx, eager=eager, appended=new)
    await tx.update_execution(ex)


async def flush_inbox(tx: Tx, ex: Execution, now: float) -> bool:
    """Move buffered inputs into history. Returns whether there were any."""
    if not tx.inputs_buffered(ex):
        return False
    buffered = await tx.inbox_take(ex.run_id)
    ex.inputs_buffered = False
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
    continued = event_type is EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    await _fail_open_updates(tx, ex, fx, requested_too=not continued)
    fx.closed[ex.run_id] = ex
    fx.changed = True
    await tx.update_execution(ex)
    await _apply_parent_close_policy(tx, ex, now, fx)
    if ex.parent is not None and not attrs.get("new_run_id"):
        await _tell_parent(tx, ex, event_type, attrs, now, fx)
    if ex.search_attributes and not attrs.get("new_run_id"):
        await schedule_watch.run_closed(tx, ex, now, fx)


_CHILD_EVENT = {
    EventType.WORKFLOW_EXECUTION_COMPLETED: EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED,
    EventType.WORKFLOW_EXECUTION_FAILED: EventType.CHILD_WORKFLOW_EXECUTION_FAILED,
    EventType.WORKFLOW_EXECUTION_CANCELED: EventType.CHILD_WORKFLOW_EXECUTION_CANCELED,
    EventType.WORKFLOW_EXECUTION_TERMINATED: EventType.CHILD_WORKFLOW_EXECUTION_TERMINATED,
    EventType.WORKFLOW_EXECUTION_TIMED_OUT: EventType.CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
}


async def _tell_parent(
    tx: Tx,
    child: Execution,
    event_type: EventType,
    attrs: dict[str, Any],
    now: float,
    fx: Effects,
) -> None:
    """A child's chain of runs ended: its parent learns how, as an input."""
    parent_info = child.parent or {}
    parent = await tx.get_execution(parent_info["run_id"])
    if parent is None or not parent.is_open or event_type not in _CHILD_EVENT:
        return
    outcome: dict[str, Any] = {
        "seq": parent_info["seq"],
        "workflow_id": child.workflow_id,
        "run_id": child.run_id,
        "workflow_type": child.workflow_type,
    }
    for key in ("result", "failure", "reason", "details", "timeout"):
        if key in attrs:
            outcome[key] = attrs[key]
    await deliver(tx, parent, [(_CHILD_EVENT[event_type], outcome)], now, fx)
    if crash.hook is not None:
        crash.hook("during_child_completion_delivery")


async def _apply_parent_close_policy(tx: Tx, parent: Execution, now: float, fx: Effects) -> None:
    """The parent closed: its open children are terminated, asked to cancel, or left
    alone, as each was started to be."""
    if not parent.children_started:
        return
    children = await tx.open_children(parent.run_id)
    for child in children:
        policy = int((child.parent or {}).get("close_policy", PARENT_CLOSE_TERMINATE))
        if policy == PARENT_CLOSE_TERMINATE:
            await terminate(
                tx,
                child,
                f"Parent {parent.workflow_id} closed (ParentClosePolicy.TERMINATE)",
                "",
                now,
                fx,
            )
        elif policy == PARENT_CLOSE_REQUEST_CANCEL and not child.cancel_requested:
            child.cancel_requested = True
            attrs = {"reason": f"Parent {parent.workflow_id} closed", "identity": ""}
            await deliver(
                tx, child, [(EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED, attrs)], now, fx
            )
    if children and crash.hook is not None:
        crash.hook("after_parent_close_policy")


# ParentClosePolicy values (perdure.workflow.ParentClosePolicy).
PARENT_CLOSE_TERMINATE = 1
PARENT_CLOSE_ABANDON = 2
PARENT_CLOSE_REQUEST_CANCEL = 3


async def _fail_open_updates(tx: Tx, ex: Execution, fx: Effects, *, requested_too: bool) -> None:
    """The run closed: updates it had not finished fail, so no caller waits forever (those it
    had not even seen go on to the next run when it continued as new)."""
    if not ex.updates_requested:
        return
    states = (
        (UpdateState.REQUESTED, UpdateState.ACCEPTED) if requested_too else (UpdateState.ACCEPTED,)
    )
    for row in await tx.updates_in_state(ex.run_id, states):
        failure = EngineFailure(
            f"Workflow closed ({ex.status.name}) before update {row.name!r} completed",
            "WorkflowClosed",
            non_retryable=True,
        ).to_dict()
        await tx.set_update_state(
            ex.run_id, row.update_id, UpdateState.REJECTED, {"failure": failure}
        )
        fx.notify("update", ex.run_id, row.update_id)


# The timer row (sequence 0; workflow timers count from 1) that ends a run on its run or
# execution timeout.
RUN_TIMEOUT_SEQ = 0
# Past these a run is ended: it should have continued as new long before.
HISTORY_EVENT_LIMIT = 51_200
HISTORY_BYTES_LIMIT = 50 * 1024 * 1024


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
    header: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> None:
    """Signal the run (the open one without ``run_id``). A signal with a ``request_id`` (its
    idempotency key) that a run of the workflow id already took is accepted and records
    nothing, even once that run has closed or continued as new.

    Raises:
        WorkflowNotFoundError: no such run, or it is closed (and did not take the key).
    """
    ex: Execution | None = None
    if request_id:
        ex, fresh = await tx.open_run_taking_key(namespace, workflow_id, run_id, request_id)
        if ex is not None and not fresh:
            return  # taken already
        if ex is None and await tx.signal_request_run(namespace, workflow_id, request_id):
            return  # a retry of a signal taken before the run closed
    if ex is None:
        ex = await find(tx, namespace, workflow_id, run_id, must_be_open=True)
        # (A run started since the statement above, by another transaction, is rare.)
        if request_id and not await tx.add_signal_request(
            namespace, workflow_id, request_id, ex.run_id
        ):
            return
    attrs = with_header(header, signal_attributes(name, payloads, identity, request_id))
    await deliver(tx, ex, [(EventType.WORKFLOW_EXECUTION_SIGNALED, attrs)], now, fx)
    if crash.hook is not None:
        crash.hook("during_signal_append")


def signal_attributes(
    name: str, payloads: list[Any], identity: str, request_id: str | None
) -> dict[str, Any]:
    """A ``WorkflowExecutionSignaled`` event's attributes (its key too, as Temporal's)."""
    attrs = {"signal_name": name, "input": payloads, "identity": identity}
    if request_id:
        attrs["request_id"] = request_id
    return attrs


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
    tx: Tx,
    ex: Execution,
    reason: str,
    identity: str,
    now: float,
    fx: Effects,
    *,
    new_run_id: str | None = None,
) -> None:
    """Close the run at once; an in-flight workflow task's completion will be refused.
    ``new_run_id`` names the run that takes its place (a reset's), for result() to follow."""
    await flush_inbox(tx, ex, now)
    attrs = {"reason": reason, "identity": identity}
    if new_run_id is not None:
        attrs["new_run_id"] = new_run_id
    await append(tx, ex, [(EventType.WORKFLOW_EXECUTION_TERMINATED, attrs)], now)
    await close(tx, ex, EventType.WORKFLOW_EXECUTION_TERMINATED, attrs, now, fx)
    await tx.update_execution(ex)


def with_header(header: dict[str, Any] | None, attrs: dict[str, Any]) -> dict[str, Any]:
    if header:
        attrs["header"] = header
    return attrs
