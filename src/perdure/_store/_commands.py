"""What each command of a workflow task does in the store besides writing its event: one
handler per command kind, found by the command's class in one table, ``HANDLERS``.

``_workflow_tasks.complete`` writes each command's event and calls its handler first (which
may complete the event's attributes); a ``Completion`` holds what the handlers leave for the
end of the task: the answers to write, the children to start, the next run to begin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from perdure._common.commands import (
    AcceptUpdate,
    CancelTimer,
    CancelWorkflow,
    CompleteUpdate,
    CompleteWorkflow,
    ContinueAsNew,
    FailWorkflow,
    RecordLocalActivity,
    RecordPatch,
    RejectUpdate,
    RequestCancelActivity,
    RequestCancelExternalWorkflow,
    ScheduleActivity,
    ScheduleLocalActivity,
    SignalExternalWorkflow,
    StartChildWorkflow,
    StartTimer,
    UpsertMemo,
    UpsertSearchAttributes,
)
from perdure._common.events import EventType
from perdure._common.run_ids import new_run_id
from perdure._store import _activities as activities
from perdure._store import _children as children
from perdure._store import _crash as crash
from perdure._store import _executions as executions
from perdure._store import _starts as starts
from perdure._store import _updates as updates
from perdure._store import _visibility as visibility
from perdure._store._eager import EagerActivities, lease
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import Execution, TaskKind, WorkflowTask


@dataclass(slots=True)
class Completion:
    """A workflow task's commands being recorded: what each command's handler works on."""

    tx: Tx
    ex: Execution
    task: WorkflowTask
    now: float
    fx: Effects
    eager: EagerActivities | None
    # Events that answer commands at once (an activity cancelled before it started, a child
    # started): written after the commands' own.
    inputs: list[tuple[EventType, dict[str, Any]]] = field(default_factory=list)
    # Children are started (other workflows signalled or cancelled) once this run's events
    # are written, so that what it hears back follows its commands in its history.
    deferred: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    # What starts the run that follows this one once it closed (continue-as-new, a retry).
    then: Callable[[], Awaitable[None]] | None = None

    async def close(self, event_type: EventType, attrs: dict[str, Any]) -> int:
        """The run closes with this event (already written): returns the next event's id."""
        for act, act_attrs in self.deferred:  # the replies are not needed any more
            await act(self.tx, self.ex, act_attrs, self.now, self.fx)
        await executions.close(self.tx, self.ex, event_type, attrs, self.now, self.fx)
        if self.then is not None:
            await self.then()
        closed_next: int = self.ex.next_event_id
        if crash.hook is not None:
            crash.hook("before_workflow_task_commit")
        return closed_next

    async def settle(self) -> int:
        """The run stays open: start what was deferred, write the answers, and schedule its
        next workflow task if anything awaits it. Returns the first event id after the
        commands' own (or after the termination, when the history grew past its limits)."""
        tx, ex, now, fx = self.tx, self.ex, self.now, self.fx
        if (
            ex.next_event_id - 1 > executions.HISTORY_EVENT_LIMIT
            or ex.history_size > executions.HISTORY_BYTES_LIMIT
        ):
            await executions.terminate(tx, ex, _history_limit_reason(ex), "perdure", now, fx)
            over: int = ex.next_event_id
            return over
        next_event_id: int = ex.next_event_id
        for act, attrs in self.deferred:
            self.inputs.append(await act(tx, ex, attrs, now, fx))
        if self.inputs:
            await executions.append(tx, ex, self.inputs, now)
        arrived = await executions.flush_inbox(tx, ex, now)
        if arrived or self.inputs or await updates.pending_count(tx, ex):
            await executions.schedule_workflow_task(tx, ex, now, fx)
        await tx.update_execution(ex)
        if crash.hook is not None:
            crash.hook("before_workflow_task_commit")
        return next_event_id


def _history_limit_reason(ex: Execution) -> str:
    return (
        f"History limit exceeded ({ex.next_event_id - 1} events, "
        f"{ex.history_size // 1024} KiB; limits {executions.HISTORY_EVENT_LIMIT} events, "
        f"{executions.HISTORY_BYTES_LIMIT // (1024 * 1024)} MiB): the workflow should "
        "continue as new when workflow.info().is_continue_as_new_suggested()"
    )


# -- one handler per command: what it does besides writing its event (``attrs``, which it may
# complete first; ``event_id`` is that event's id) ---------------------------------------------
async def _schedule_activity(
    c: Completion, command: ScheduleActivity, attrs: dict[str, Any], event_id: int
) -> None:
    tx, ex, now, fx, eager = c.tx, c.ex, c.now, c.fx, c.eager
    row = activities.new_task(ex, attrs, event_id, now)
    if eager is not None and eager.wants(
        ex.namespace, command.task_queue, command.activity_type, len(eager.granted)
    ):
        lease(row, eager.owner, now)
        await tx.insert_task(row)
        fx.wake(row.deadline)
        eager.granted.append(activities.activity_task(row, eager.owner, now))
        return
    await tx.insert_task(row)
    fx.wake(row.deadline)
    fx.task_ready(ex.namespace, command.task_queue, TaskKind.ACTIVITY)


async def _request_cancel_activity(
    c: Completion, command: RequestCancelActivity, attrs: dict[str, Any], event_id: int
) -> None:
    act = await c.tx.find_task(c.ex.run_id, TaskKind.ACTIVITY, command.seq)
    if act is None:
        return
    scheduled_event_id = act.data["scheduled_event_id"]
    attrs["scheduled_event_id"] = scheduled_event_id
    if act.lease_owner is None:  # not started: cancelled at once
        await c.tx.delete_task(act.task_id)
        cancelled = {"seq": command.seq, "scheduled_event_id": scheduled_event_id, "details": []}
        c.inputs.append((EventType.ACTIVITY_TASK_CANCELED, cancelled))
    else:
        act.data["cancel_requested"] = True
        await c.tx.update_task(act)
        c.fx.activity_cancels.add((c.ex.run_id, command.seq))


async def _start_timer(
    c: Completion, command: StartTimer, attrs: dict[str, Any], event_id: int
) -> None:
    attrs["fire_at"] = fire_at = c.task.started_time + command.duration
    await c.tx.insert_timer(c.ex.run_id, command.seq, fire_at, event_id)
    c.fx.wake(fire_at)


async def _cancel_timer(
    c: Completion, command: CancelTimer, attrs: dict[str, Any], event_id: int
) -> None:
    started = await c.tx.delete_timer(c.ex.run_id, command.seq)
    attrs["started_event_id"] = started or 0


async def _upsert_memo(
    c: Completion, command: UpsertMemo, attrs: dict[str, Any], event_id: int
) -> None:
    memo = dict(c.ex.memo or {})
    for key, value in command.memo.items():
        if value is None:
            memo.pop(key, None)
        else:
            memo[key] = value
    c.ex.memo = memo


async def _upsert_search_attributes(
    c: Completion, command: UpsertSearchAttributes, attrs: dict[str, Any], event_id: int
) -> None:
    await visibility.set_attributes(c.tx, c.ex, command.search_attributes)


async def _accept_update(
    c: Completion, command: AcceptUpdate, attrs: dict[str, Any], event_id: int
) -> None:
    await updates.accepted(c.tx, c.ex, command.update_id, c.fx)


async def _reject_update(
    c: Completion, command: RejectUpdate, attrs: dict[str, Any], event_id: int
) -> None:
    await updates.rejected(c.tx, c.ex, command.update_id, command.failure, c.fx)


async def _complete_update(
    c: Completion, command: CompleteUpdate, attrs: dict[str, Any], event_id: int
) -> None:
    outcome = (
        {"failure": command.failure} if command.failure is not None else {"result": command.result}
    )
    await updates.completed(c.tx, c.ex, command.update_id, outcome, c.fx)


async def _start_child(
    c: Completion, command: StartChildWorkflow, attrs: dict[str, Any], event_id: int
) -> None:
    # The child records the event that started it (its parent's describe() shows it).
    c.deferred.append((children.start_child, {**attrs, "initiated_event_id": event_id}))


async def _signal_external(
    c: Completion, command: SignalExternalWorkflow, attrs: dict[str, Any], event_id: int
) -> None:
    c.deferred.append((children.signal_external, attrs))


async def _cancel_external(
    c: Completion, command: RequestCancelExternalWorkflow, attrs: dict[str, Any], event_id: int
) -> None:
    c.deferred.append((children.cancel_external, attrs))


async def _continue_as_new(
    c: Completion, command: ContinueAsNew, attrs: dict[str, Any], event_id: int
) -> None:
    attrs["search_attributes"] = c.ex.search_attributes
    attrs["new_run_id"] = new_run_id()
    c.then = lambda: starts.start_continued(c.tx, c.ex, attrs, c.now, c.fx)


async def _fail_workflow(
    c: Completion, command: FailWorkflow, attrs: dict[str, Any], event_id: int
) -> None:
    retry_in = starts.retry_delay(c.ex, command.failure, c.now)
    if retry_in is None:
        return
    attrs["new_run_id"] = run_id = new_run_id()
    c.then = lambda: starts.start_retry(c.tx, c.ex, run_id, retry_in, c.now, c.fx)


async def _event_only(c: Completion, command: Any, attrs: dict[str, Any], event_id: int) -> None:
    """A command that is only its event (a local activity's outcome recorded as a marker, a
    patch, the run completing or cancelled)."""


_Handler = Callable[[Completion, Any, dict[str, Any], int], Awaitable[None]]
HANDLERS: dict[type, _Handler] = {
    ScheduleActivity: _schedule_activity,
    RequestCancelActivity: _request_cancel_activity,
    StartTimer: _start_timer,
    CancelTimer: _cancel_timer,
    UpsertMemo: _upsert_memo,
    UpsertSearchAttributes: _upsert_search_attributes,
    AcceptUpdate: _accept_update,
    RejectUpdate: _reject_update,
    CompleteUpdate: _complete_update,
    StartChildWorkflow: _start_child,
    SignalExternalWorkflow: _signal_external,
    RequestCancelExternalWorkflow: _cancel_external,
    ContinueAsNew: _continue_as_new,
    FailWorkflow: _fail_workflow,
    CompleteWorkflow: _event_only,
    CancelWorkflow: _event_only,
    RecordPatch: _event_only,
    RecordLocalActivity: _event_only,
    ScheduleLocalActivity: _event_only,  # run by the worker: it has no event of its own
}


__all__ = ["HANDLERS", "Completion"]
