"""The rules for workflow tasks: claim, complete (commands to events, tasks and timers, all in
one transaction, fenced), fail, and time out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from perdure._common.commands import (
    CLOSE_COMMANDS,
    AcceptUpdate,
    CancelTimer,
    CancelWorkflow,
    Command,
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
from perdure._common.events import INPUT_EVENTS, EventType, continue_as_new_suggested
from perdure._common.run_ids import new_run_id as make_run_id
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
from perdure._store._types import (
    Execution,
    StaleTaskError,
    TaskKind,
    TaskRow,
    WftState,
    WorkflowTask,
)

# Failed workflow tasks retry quickly at first, then back off to at most ten minutes.
_WFT_RETRY_INITIAL = 1.0
_WFT_RETRY_MAX = 600.0


def _wft_backoff(attempt: int) -> float:
    return float(min(_WFT_RETRY_INITIAL * 2 ** min(max(attempt - 1, 0), 30), _WFT_RETRY_MAX))


async def claim(
    tx: Tx, namespace: str, task_queue: str, owner: str, now: float, limit: int, fx: Effects
) -> list[WorkflowTask]:
    rows = await tx.claim_tasks(TaskKind.WORKFLOW, namespace, task_queue, owner, now, limit)
    if crash.hook is not None and rows:
        crash.hook("after_lease_claim")
    runs = await tx.get_executions([row.run_id for row in rows])
    out = []
    started = []
    for row in rows:
        fx.wake(row.deadline)
        ex = runs.get(row.run_id)
        if ex is None or not ex.is_open:
            await tx.delete_task(row.task_id)
            continue
        ex.wft_state = WftState.STARTED
        started.append(ex)
        out.append(executions.workflow_task(row, ex, owner, now))
    await tx.update_executions(started)
    return out


async def _held(tx: Tx, task: WorkflowTask) -> tuple[TaskRow, Any]:
    row, ex = await tx.get_task_and_execution(task.task_id, task.run_id)
    if (
        row is None
        or ex is None
        or row.lease_owner != task.owner
        or row.attempt != task.attempt
        or ex.next_event_id != task.next_event_id
        or not ex.is_open
    ):
        raise StaleTaskError(
            f"Workflow task of {task.workflow_id} (attempt {task.attempt}) is no longer held "
            "by this worker"
        )
    return row, ex


async def complete(
    tx: Tx,
    task: WorkflowTask,
    commands: Sequence[Command],
    identity: str,
    now: float,
    fx: Effects,
    eager: EagerActivities | None = None,
) -> int | None:
    """Record the task's commands (activities on the worker's own queue leased to it at once
    when it offers ``eager``). Returns the id of the first event after them, or None
    when the commands were refused because inputs arrived that the code has not seen while
    it was deciding to close (the task is then run again with them)."""
    row, ex = await _held(tx, task)
    closing = any(isinstance(c, CLOSE_COMMANDS) for c in commands)
    if closing and await tx.inbox_count(ex.run_id):
        # Temporal's rule: a workflow cannot close over signals it has not seen.
        await tx.delete_task(row.task_id)
        ex.wft_state = WftState.NONE
        await executions.flush_inbox(tx, ex, now)
        await executions.schedule_workflow_task(tx, ex, now, fx)
        await tx.update_execution(ex)
        return None
    await tx.delete_task(row.task_id)
    ex.wft_state = WftState.NONE
    ex.wft_attempt = 0
    ex.last_failure = None
    if not await _only_rejected_updates(tx, ex, commands):
        await executions.append(
            tx,
            ex,
            [(EventType.WORKFLOW_TASK_COMPLETED, _task_completed(ex, task, identity))],
            now,
        )
    done = _Completion(tx, ex, task, now, fx, eager)
    for command in commands:
        event_id = ex.next_event_id
        attrs = command.attributes()
        await _HANDLERS[type(command)](done, command, attrs, event_id)
        if command.event_type is None:  # a rejected update leaves no event
            continue
        await executions.append(tx, ex, [(command.event_type, attrs)], now)
        if isinstance(command, CLOSE_COMMANDS):
            return await done.close(command.event_type, attrs)
    return await done.settle()


@dataclass(slots=True)
class _Completion:
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


async def _only_rejected_updates(tx: Tx, ex: Any, commands: Sequence[Command]) -> bool:
    """A task that saw no new input and only rejected updates leaves no trace in history
    (Temporal's speculative workflow task): replay has nothing to redo for it."""
    if not commands or not all(isinstance(c, RejectUpdate) for c in commands):
        return False
    last = await tx.get_history_events(ex.run_id, ex.next_event_id - 2, 1)
    return bool(last) and last[0].event_type not in INPUT_EVENTS


# -- one handler per command: what it does besides writing its event (``attrs``, which it may
# complete first; ``event_id`` is that event's id) ---------------------------------------------
async def _schedule_activity(
    c: _Completion, command: ScheduleActivity, attrs: dict[str, Any], event_id: int
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
    c: _Completion, command: RequestCancelActivity, attrs: dict[str, Any], event_id: int
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
    c: _Completion, command: StartTimer, attrs: dict[str, Any], event_id: int
) -> None:
    attrs["fire_at"] = fire_at = c.task.started_time + command.duration
    await c.tx.insert_timer(c.ex.run_id, command.seq, fire_at, event_id)
    c.fx.wake(fire_at)


async def _cancel_timer(
    c: _Completion, command: CancelTimer, attrs: dict[str, Any], event_id: int
) -> None:
    started = await c.tx.delete_timer(c.ex.run_id, command.seq)
    attrs["started_event_id"] = started or 0


async def _upsert_memo(
    c: _Completion, command: UpsertMemo, attrs: dict[str, Any], event_id: int
) -> None:
    memo = dict(c.ex.memo or {})
    for key, value in command.memo.items():
        if value is None:
            memo.pop(key, None)
        else:
            memo[key] = value
    c.ex.memo = memo


async def _upsert_search_attributes(
    c: _Completion, command: UpsertSearchAttributes, attrs: dict[str, Any], event_id: int
) -> None:
    await visibility.set_attributes(c.tx, c.ex, command.search_attributes)


async def _accept_update(
    c: _Completion, command: AcceptUpdate, attrs: dict[str, Any], event_id: int
) -> None:
    await updates.accepted(c.tx, c.ex, command.update_id, c.fx)


async def _reject_update(
    c: _Completion, command: RejectUpdate, attrs: dict[str, Any], event_id: int
) -> None:
    await updates.rejected(c.tx, c.ex, command.update_id, command.failure, c.fx)


async def _complete_update(
    c: _Completion, command: CompleteUpdate, attrs: dict[str, Any], event_id: int
) -> None:
    outcome = (
        {"failure": command.failure} if command.failure is not None else {"result": command.result}
    )
    await updates.completed(c.tx, c.ex, command.update_id, outcome, c.fx)


async def _start_child(
    c: _Completion, command: StartChildWorkflow, attrs: dict[str, Any], event_id: int
) -> None:
    # The child records the event that started it (its parent's describe() shows it).
    c.deferred.append((children.start_child, {**attrs, "initiated_event_id": event_id}))


async def _signal_external(
    c: _Completion, command: SignalExternalWorkflow, attrs: dict[str, Any], event_id: int
) -> None:
    c.deferred.append((children.signal_external, attrs))


async def _cancel_external(
    c: _Completion, command: RequestCancelExternalWorkflow, attrs: dict[str, Any], event_id: int
) -> None:
    c.deferred.append((children.cancel_external, attrs))


async def _continue_as_new(
    c: _Completion, command: ContinueAsNew, attrs: dict[str, Any], event_id: int
) -> None:
    attrs["search_attributes"] = c.ex.search_attributes
    attrs["new_run_id"] = make_run_id()
    c.then = lambda: starts.start_continued(c.tx, c.ex, attrs, c.now, c.fx)


async def _fail_workflow(
    c: _Completion, command: FailWorkflow, attrs: dict[str, Any], event_id: int
) -> None:
    retry_in = starts.retry_delay(c.ex, command.failure, c.now)
    if retry_in is None:
        return
    attrs["new_run_id"] = new_run_id = make_run_id()
    c.then = lambda: starts.start_retry(c.tx, c.ex, new_run_id, retry_in, c.now, c.fx)


async def _event_only(c: _Completion, command: Any, attrs: dict[str, Any], event_id: int) -> None:
    """A command that is only its event (a local activity's outcome recorded as a marker, a
    patch, the run completing or cancelled)."""


_Handler = Callable[[_Completion, Any, dict[str, Any], int], Awaitable[None]]
_HANDLERS: dict[type, _Handler] = {
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


async def fail(
    tx: Tx,
    task: WorkflowTask,
    failure: dict[str, Any],
    identity: str,
    now: float,
    fx: Effects,
) -> None:
    """The code failed: keep the workflow open, record why, retry the task with backoff."""
    row, ex = await _held(tx, task)
    ex.wft_attempt = row.attempt + 1
    ex.last_failure = {**failure, "attempt": row.attempt, "time": now}
    if row.attempt == 1:
        await executions.append(
            tx,
            ex,
            [
                (
                    EventType.WORKFLOW_TASK_FAILED,
                    {"failure": failure, "attempt": row.attempt, "identity": identity},
                )
            ],
            now,
        )
    await executions.flush_inbox(tx, ex, now)
    _release(row, visible_at=now + _wft_backoff(row.attempt))
    row.attempt += 1
    await tx.update_task(row)
    ex.wft_state = WftState.SCHEDULED
    await tx.update_execution(ex)
    fx.wake(row.visible_at)


async def extend_lease(tx: Tx, task: WorkflowTask, now: float, fx: Effects) -> None:
    """The worker is still working on the task (running its local activities): renew the
    lease so no other worker takes it over."""
    row, _ = await _held(tx, task)
    row.lease_expires = now + row.lease_seconds
    row.deadline = row.lease_expires
    await tx.update_task(row)
    fx.wake(row.deadline)


def _release(row: TaskRow, *, visible_at: float) -> None:
    row.lease_owner = None
    row.lease_expires = None
    row.deadline = None
    row.visible_at = visible_at


async def lease_expired(tx: Tx, row: TaskRow, now: float, fx: Effects) -> None:
    """The worker holding the task vanished or is too slow: let another take it now."""
    ex = await tx.get_execution(row.run_id)
    if ex is None or not ex.is_open:
        await tx.delete_task(row.task_id)
        return
    message = (
        f"Workflow task timed out: no completion within {row.lease_seconds:g}s "
        "(worker lost or blocked)"
    )
    await _run_again(tx, row, ex, {"message": message, "kind": "timeout"}, now, fx)


async def hand_back(tx: Tx, task: WorkflowTask, reason: str, now: float, fx: Effects) -> None:
    """The worker could not record the task (a store call failed, so it cannot know whether
    its commands were recorded): let a worker take it again now, as if its lease had run
    out. A task whose commands were recorded is no longer held: ``StaleTaskError``.

    Without it, the task would wait for its lease to run out, and on the time-skipping test
    clock (which stands still while a task is leased) that never comes."""
    row, ex = await _held(tx, task)
    failure = {"message": f"Workflow task was not recorded: {reason}", "kind": "worker"}
    await _run_again(tx, row, ex, failure, now, fx)


async def _run_again(
    tx: Tx, row: TaskRow, ex: Execution, failure: dict[str, Any], now: float, fx: Effects
) -> None:
    """The task's lease ends without a completion: it is ready again at once, as its next
    attempt (so the ended attempt's fence refuses anything it still sends)."""
    await executions.flush_inbox(tx, ex, now)
    ex.wft_attempt = row.attempt + 1
    ex.last_failure = {**failure, "attempt": row.attempt, "time": now}
    _release(row, visible_at=now)
    row.attempt += 1
    await tx.update_task(row)
    ex.wft_state = WftState.SCHEDULED
    await tx.update_execution(ex)
    fx.task_ready(row.namespace, row.task_queue, TaskKind.WORKFLOW)


__all__ = ["claim", "complete", "extend_lease", "fail", "hand_back", "lease_expired"]


def _task_completed(ex: Execution, task: WorkflowTask, identity: str) -> dict[str, Any]:
    """A WorkflowTaskCompleted's attributes: what the activation saw, for replay to see it
    too (its time, the history's size before this event, and whether continue-as-new was
    suggested: this event's id is the length the activation was told)."""
    attrs: dict[str, Any] = {
        "time": task.started_time,
        "identity": identity,
        "history_size": ex.history_size,
    }
    if continue_as_new_suggested(ex.next_event_id, ex.history_size):
        attrs["suggest_continue_as_new"] = True
    return attrs
