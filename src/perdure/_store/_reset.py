"""The rules for resetting a workflow (Temporal's ResetWorkflowExecution), in one transaction.

A reset goes back to one of a run's workflow tasks, the one that completed at a
``WorkflowTaskCompleted`` event E, and runs it again on the current code. A new run of the same
workflow id carries the base run's events ``1..E-1`` (the history before that task, its inputs
included), then a ``WorkflowTaskFailed`` whose cause is ``ResetWorkflow`` (replay ignores it, as
it ignores every ``WorkflowTaskFailed``), then the signals the workflow received after E, again;
and a workflow task is scheduled. The open run of the id, if any, is terminated with the reason
(its tasks and timers go with it, so a late completion of its work is refused like any stale
one), naming the new run so that ``result()`` follows. What the carried history leaves pending
is made again for the new run: a task for each activity scheduled and not finished (a first
attempt, as Temporal reschedules an activity that had not started), a timer row for each timer
started and not fired (at its first fire time). A reset point where a child workflow is still
running is refused, as Temporal refuses it by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perdure._common.events import EventType, HistoryEvent
from perdure._common.failure import EngineFailure
from perdure._common.run_ids import new_run_id as make_run_id
from perdure._common.status import WorkflowExecutionStatus
from perdure._store import _activities as activities
from perdure._store import _executions as executions
from perdure._store import _visibility as visibility
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import Execution, ResetRequest, TaskKind
from perdure.common._enums import ResetType

# The cause of the WorkflowTaskFailed event that records a reset (Temporal's
# WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW).
RESET_CAUSE = "ResetWorkflow"

_ACTIVITY_CLOSED = frozenset(
    {
        EventType.ACTIVITY_TASK_COMPLETED,
        EventType.ACTIVITY_TASK_FAILED,
        EventType.ACTIVITY_TASK_TIMED_OUT,
        EventType.ACTIVITY_TASK_CANCELED,
    }
)
_CHILD_CLOSED = frozenset(
    {
        EventType.START_CHILD_WORKFLOW_EXECUTION_FAILED,
        EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED,
        EventType.CHILD_WORKFLOW_EXECUTION_FAILED,
        EventType.CHILD_WORKFLOW_EXECUTION_CANCELED,
        EventType.CHILD_WORKFLOW_EXECUTION_TERMINATED,
        EventType.CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
    }
)


@dataclass(slots=True)
class _Carried:
    """What a history up to a reset point leaves pending, and the run's state there."""

    # seq -> (ActivityTaskScheduled event id, its attributes)
    activities: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    # Activities whose cancellation was requested and not yet settled.
    cancelling: set[int] = field(default_factory=set)
    # seq -> (TimerStarted event id, fire time)
    timers: dict[int, tuple[int, float]] = field(default_factory=dict)
    # seq -> child workflow id
    children: dict[int, str] = field(default_factory=dict)
    memo: dict[str, Any] | None = None
    search_attributes: dict[str, Any] = field(default_factory=dict)
    cancel_requested: bool = False


def _carry(events: list[HistoryEvent]) -> _Carried:
    """Walk the events a new run keeps and note what they leave pending."""
    state = _Carried()
    for event in events:
        kind, attrs = event.event_type, event.attributes
        if kind is EventType.WORKFLOW_EXECUTION_STARTED:
            state.memo = attrs.get("memo")
            state.search_attributes = dict(attrs.get("search_attributes") or {})
        elif kind is EventType.ACTIVITY_TASK_SCHEDULED:
            state.activities[attrs["seq"]] = (event.event_id, attrs)
        elif kind is EventType.ACTIVITY_TASK_CANCEL_REQUESTED:
            state.cancelling.add(attrs["seq"])
        elif kind in _ACTIVITY_CLOSED:
            state.activities.pop(attrs["seq"], None)
            state.cancelling.discard(attrs["seq"])
        elif kind is EventType.TIMER_STARTED:
            fire_at = attrs.get("fire_at", event.event_time + attrs.get("duration", 0.0))
            state.timers[attrs["seq"]] = (event.event_id, fire_at)
        elif kind in (EventType.TIMER_FIRED, EventType.TIMER_CANCELED):
            state.timers.pop(attrs["seq"], None)
        elif kind is EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            state.children[attrs["seq"]] = attrs["workflow_id"]
        elif kind in _CHILD_CLOSED:
            state.children.pop(attrs["seq"], None)
        elif kind is EventType.WORKFLOW_PROPERTIES_MODIFIED:
            memo = dict(state.memo or {})
            for key, value in (attrs.get("memo") or {}).items():
                if value is None:
                    memo.pop(key, None)
                else:
                    memo[key] = value
            state.memo = memo
        elif kind is EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            state.search_attributes.update(attrs.get("search_attributes") or {})
        elif kind is EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            state.cancel_requested = True
    return state


def _describe_run(ex: Execution) -> str:
    return f"workflow {ex.workflow_id!r} (run {ex.run_id})"


def reset_point(events: list[HistoryEvent], base: Execution, req: ResetRequest) -> int:
    """The id of the ``WorkflowTaskCompleted`` event the reset goes back to.

    Raises:
        ValueError: the event id is not one of the run's WorkflowTaskCompleted events, or the
            run has none.
    """
    completed = [e.event_id for e in events if e.event_type is EventType.WORKFLOW_TASK_COMPLETED]
    if req.event_id is not None:
        if req.event_id in completed:
            return req.event_id
        shown = ", ".join(str(i) for i in completed[-10:]) or "none"
        more = "the last ten are " if len(completed) > 10 else ""
        raise ValueError(
            f"Cannot reset {_describe_run(base)} to event {req.event_id}: a reset goes back to "
            f"a WorkflowTaskCompleted event, and this run's are {more}{shown}. Pass one of "
            "them, or no event id and a reset type."
        )
    if not completed:
        raise ValueError(
            f"Cannot reset {_describe_run(base)}: it has no completed workflow task to go back "
            "to (it never got past its first one; fix the code and let the task retry, or "
            "start the workflow again)."
        )
    return completed[0] if req.reset_type == ResetType.FIRST_WORKFLOW_TASK else completed[-1]


async def _base_run(tx: Tx, req: ResetRequest) -> Execution:
    """The run to reset: the one asked for (the open or latest run without a run id), or
    for ``LAST_CONTINUED_AS_NEW`` (and no event id), the run it continued from."""
    target = await executions.find(
        tx, req.namespace, req.workflow_id, req.run_id, must_be_open=False
    )
    if req.event_id is not None or req.reset_type != ResetType.LAST_CONTINUED_AS_NEW:
        return target
    started = await tx.get_history_events(target.run_id, 0, 1)
    previous = started[0].attributes.get("continued_run_id") if started else None
    if not previous:
        raise ValueError(
            f"Cannot reset {_describe_run(target)} with LAST_CONTINUED_AS_NEW: the run did not "
            "continue from another one. Use LAST_WORKFLOW_TASK or FIRST_WORKFLOW_TASK."
        )
    return await executions.find(tx, req.namespace, req.workflow_id, previous, must_be_open=False)


def _successor(ex: Execution) -> str | None:
    """The run that took over from ``ex`` when it continued as new or retried, if any (not
    one made by a reset: a run a reset ended is where a chain stops)."""
    event = ex.close_event or {}
    if event.get("event_type") == EventType.WORKFLOW_EXECUTION_TERMINATED.value:
        return None
    new_run_id = (event.get("attributes") or {}).get("new_run_id")
    return str(new_run_id) if new_run_id else None


async def _signals_after(tx: Tx, base: Execution, point: int) -> list[HistoryEvent]:
    """The signals received after the reset point: by the base run, then by each run that
    continued from it in turn (as Temporal reapplies along the continue-as-new chain)."""
    signaled = EventType.WORKFLOW_EXECUTION_SIGNALED
    found = [
        e for e in await tx.get_history_events(base.run_id, point, -1) if e.event_type is signaled
    ]
    seen = {base.run_id}
    run: Execution | None = base
    while run is not None and (next_id := _successor(run)) is not None and next_id not in seen:
        seen.add(next_id)
        run = await tx.get_execution(next_id)
        if run is not None:
            events = await tx.get_history_events(next_id, 0, -1)
            found.extend(e for e in events if e.event_type is signaled)
    return found


def _note(ex: Execution, key: str, info: dict[str, Any]) -> None:
    ex.reset_points = {**(ex.reset_points or {}), key: info}


async def reset(tx: Tx, req: ResetRequest, now: float, fx: Effects) -> str:
    """Reset the run ``req`` names; returns the new run's id.

    Raises:
        WorkflowNotFoundError: no such run.
        ValueError: no such reset point, or a child workflow was running at it.
    """
    base = await _base_run(tx, req)
    events = await tx.get_history_events(base.run_id, 0, -1)
    point = reset_point(events, base, req)
    kept = events[: point - 1]
    carried = _carry(kept)
    if carried.children:
        pending = ", ".join(f"{wf_id!r}" for wf_id in carried.children.values())
        raise ValueError(
            f"Cannot reset {_describe_run(base)} to event {point}: child workflows started "
            f"before it were still running then ({pending}), and perdure cannot reset a run "
            "with pending children yet. Reset to a workflow task before they started or after "
            "they closed."
        )
    new_run_id = make_run_id()
    info = {
        "base_run_id": base.run_id,
        "new_run_id": new_run_id,
        "event_id": point,
        "reason": req.reason,
        "time": now,
        "identity": req.identity,
    }
    current = await tx.get_open_execution(req.namespace, req.workflow_id)
    updates_moved = False
    parent = base.parent
    if current is None:
        # The workflow ended, and its parent (if any) has heard how: the new run does not
        # report to it again.
        parent = None
    else:
        if current.run_id == base.run_id:
            base = current
        if current.updates_requested:
            # As on continue-as-new, updates the run has not seen go on to the new run.
            await tx.move_requested_updates(current.run_id, new_run_id)
            updates_moved = True
        _note(current, "to", info)
        await executions.terminate(
            tx, current, req.reason, req.identity, now, fx, new_run_id=new_run_id
        )
    if base is not current:
        _note(base, "to", info)
        await tx.update_execution(base)
    signals = await _signals_after(tx, base, point) if req.reapply_signals else []
    await _start_reset_run(
        tx, base, kept, carried, signals, info, now, fx, parent=parent, updates=updates_moved
    )
    fx.changed = True
    return new_run_id


async def _start_reset_run(
    tx: Tx,
    base: Execution,
    kept: list[HistoryEvent],
    carried: _Carried,
    signals: list[HistoryEvent],
    info: dict[str, Any],
    now: float,
    fx: Effects,
    *,
    parent: dict[str, Any] | None,
    updates: bool,
) -> None:
    """Create the new run: the kept history, the reset's record, the reapplied signals, the
    pending work made again, and a workflow task."""
    ex = Execution(
        run_id=info["new_run_id"],
        namespace=base.namespace,
        workflow_id=base.workflow_id,
        workflow_type=base.workflow_type,
        task_queue=base.task_queue,
        status=WorkflowExecutionStatus.RUNNING,
        next_event_id=len(kept) + 1,
        start_time=now,
        task_timeout=base.task_timeout,
        cancel_requested=carried.cancel_requested,
        memo=carried.memo,
        attempt=base.attempt,
        execution_deadline=base.execution_deadline,
        run_timeout=base.run_timeout,
        retry_policy=base.retry_policy,
        first_run_id=base.first_run_id,
        parent=parent,
        updates_requested=updates,
        reset_points={"from": info},
        priority=base.priority,
    )
    await visibility.set_attributes(
        tx, ex, {k: v for k, v in carried.search_attributes.items() if v is not None}
    )
    ex.history_size = await tx.append_events(ex.run_id, kept)
    record = {
        "cause": RESET_CAUSE,
        "failure": EngineFailure(info["reason"], RESET_CAUSE, non_retryable=True).to_dict(),
        "attempt": 1,
        "identity": info["identity"],
        "base_run_id": info["base_run_id"],
        "new_run_id": info["new_run_id"],
        "reset_event_id": info["event_id"],
    }
    inputs: list[tuple[EventType, dict[str, Any]]] = [(EventType.WORKFLOW_TASK_FAILED, record)]
    for seq in sorted(carried.cancelling):
        # Its cancellation was asked for: with no attempt running any more, it is cancelled,
        # as an activity not yet started is when the request comes.
        scheduled = carried.activities.pop(seq, None)
        if scheduled is not None:
            attrs = {"seq": seq, "scheduled_event_id": scheduled[0], "details": []}
            inputs.append((EventType.ACTIVITY_TASK_CANCELED, attrs))
    inputs.extend((EventType.WORKFLOW_EXECUTION_SIGNALED, dict(e.attributes)) for e in signals)
    await executions.append(tx, ex, inputs, now)
    for scheduled_event_id, attrs in carried.activities.values():
        row = activities.new_task(ex, attrs, scheduled_event_id, now)
        await tx.insert_task(row)
        fx.wake(row.deadline)
        fx.task_ready(ex.namespace, row.task_queue, TaskKind.ACTIVITY)
    for seq, (started_event_id, fire_at) in carried.timers.items():
        await tx.insert_timer(ex.run_id, seq, fire_at, started_event_id)
        fx.wake(fire_at)
    deadlines = [
        d
        for d in (now + ex.run_timeout if ex.run_timeout else None, ex.execution_deadline)
        if d is not None
    ]
    if deadlines:
        await tx.insert_timer(ex.run_id, executions.RUN_TIMEOUT_SEQ, min(deadlines), 1)
        fx.wake(min(deadlines))
    await executions.schedule_workflow_task(tx, ex, now, fx)
    await tx.insert_execution(ex)
