"""The rules for workflow tasks: claim, complete (commands to events, tasks and timers, all in
one transaction, fenced), fail, and time out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perdure._common.commands import (
    CLOSE_COMMANDS,
    AcceptUpdate,
    CancelTimer,
    Command,
    CompleteUpdate,
    ContinueAsNew,
    FailWorkflow,
    RejectUpdate,
    RequestCancelActivity,
    RequestCancelExternalWorkflow,
    ScheduleActivity,
    SignalExternalWorkflow,
    StartChildWorkflow,
    StartTimer,
    UpsertMemo,
    UpsertSearchAttributes,
)
from perdure._common.events import INPUT_EVENTS, EventType, continue_as_new_suggested
from perdure._common.run_ids import new_run_id
from perdure._store import _activities as activities
from perdure._store import _children as children
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
    inputs: list[tuple[EventType, dict[str, Any]]] = []
    # Children are started (other workflows signalled or cancelled) once this run's events are
    # written, so that what it hears back follows its commands in its history.
    deferred: list[tuple[Any, dict[str, Any]]] = []
    for command in commands:
        event_id = ex.next_event_id
        attrs = command.attributes()
        if isinstance(command, StartTimer):
            attrs["fire_at"] = task.started_time + command.duration
        if isinstance(command, ScheduleActivity | RequestCancelActivity | StartTimer | CancelTimer):
            await _apply_command(tx, ex, command, attrs, event_id, now, inputs, fx, eager)
        elif isinstance(command, UpsertMemo):
            memo = dict(ex.memo or {})
            for key, value in command.memo.items():
                if value is None:
                    memo.pop(key, None)
                else:
                    memo[key] = value
            ex.memo = memo
        elif isinstance(command, UpsertSearchAttributes):
            await visibility.set_attributes(tx, ex, command.search_attributes)
        elif isinstance(command, ContinueAsNew):
            attrs["search_attributes"] = ex.search_attributes
        elif isinstance(command, AcceptUpdate):
            await updates.accepted(tx, ex, command.update_id, fx)
        elif isinstance(command, RejectUpdate):
            await updates.rejected(tx, ex, command.update_id, command.failure, fx)
            continue  # a rejected update leaves no event
        elif isinstance(command, StartChildWorkflow):
            # The child records the event that started it (its parent's describe() shows it).
            deferred.append((children.start_child, {**attrs, "initiated_event_id": event_id}))
        elif isinstance(command, SignalExternalWorkflow):
            deferred.append((children.signal_external, attrs))
        elif isinstance(command, RequestCancelExternalWorkflow):
            deferred.append((children.cancel_external, attrs))
        elif isinstance(command, CompleteUpdate):
            outcome = (
                {"failure": command.failure}
                if command.failure is not None
                else {"result": command.result}
            )
            await updates.completed(tx, ex, command.update_id, outcome, fx)
        retry_in = None
        if isinstance(command, ContinueAsNew):
            attrs["new_run_id"] = new_run_id()
        elif isinstance(command, FailWorkflow):
            retry_in = starts.retry_delay(ex, command.failure, now)
            if retry_in is not None:
                attrs["new_run_id"] = new_run_id()
        event_type = command.event_type
        if event_type is None:  # only RejectUpdate has none, handled above
            continue
        await executions.append(tx, ex, [(event_type, attrs)], now)
        if isinstance(command, CLOSE_COMMANDS):
            for act, act_attrs in deferred:  # the run is closing: the replies are not needed
                await act(tx, ex, act_attrs, now, fx)
            await executions.close(tx, ex, command.event_type, attrs, now, fx)  # writes ex
            if isinstance(command, ContinueAsNew):
                await starts.start_continued(tx, ex, attrs, now, fx)
            elif retry_in is not None:
                await starts.start_retry(tx, ex, attrs["new_run_id"], retry_in, now, fx)
            closed_next: int = ex.next_event_id
            return closed_next
    if (
        ex.next_event_id - 1 > executions.HISTORY_EVENT_LIMIT
        or ex.history_size > executions.HISTORY_BYTES_LIMIT
    ):
        await executions.terminate(
            tx,
            ex,
            f"History limit exceeded ({ex.next_event_id - 1} events, "
            f"{ex.history_size // 1024} KiB; limits {executions.HISTORY_EVENT_LIMIT} events, "
            f"{executions.HISTORY_BYTES_LIMIT // (1024 * 1024)} MiB): the workflow should "
            "continue as new when workflow.info().is_continue_as_new_suggested()",
            "perdure",
            now,
            fx,
        )
        over: int = ex.next_event_id
        return over
    next_event_id: int = ex.next_event_id
    for act, attrs in deferred:
        inputs.append(await act(tx, ex, attrs, now, fx))
    if inputs:
        await executions.append(tx, ex, inputs, now)
    arrived = await executions.flush_inbox(tx, ex, now)
    if arrived or inputs or await updates.pending_count(tx, ex):
        await executions.schedule_workflow_task(tx, ex, now, fx)
    await tx.update_execution(ex)
    return next_event_id


async def _only_rejected_updates(tx: Tx, ex: Any, commands: Sequence[Command]) -> bool:
    """A task that saw no new input and only rejected updates leaves no trace in history
    (Temporal's speculative workflow task): replay has nothing to redo for it."""
    if not commands or not all(isinstance(c, RejectUpdate) for c in commands):
        return False
    last = await tx.get_history_events(ex.run_id, ex.next_event_id - 2, 1)
    return bool(last) and last[0].event_type not in INPUT_EVENTS


async def _apply_command(
    tx: Tx,
    ex: Any,
    command: Command,
    attrs: dict[str, Any],
    event_id: int,
    now: float,
    inputs: list[tuple[EventType, dict[str, Any]]],
    fx: Effects,
    eager: EagerActivities | None = None,
) -> None:
    if isinstance(command, ScheduleActivity):
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
    elif isinstance(command, RequestCancelActivity):
        act = await tx.find_task(ex.run_id, TaskKind.ACTIVITY, command.seq)
        if act is None:
            return
        attrs["scheduled_event_id"] = act.data["scheduled_event_id"]
        if act.lease_owner is None:
            await tx.delete_task(act.task_id)
            inputs.append(
                (
                    EventType.ACTIVITY_TASK_CANCELED,
                    {
                        "seq": command.seq,
                        "scheduled_event_id": act.data["scheduled_event_id"],
                        "details": [],
                    },
                )
            )
        else:
            act.data["cancel_requested"] = True
            await tx.update_task(act)
            fx.activity_cancels.add((ex.run_id, command.seq))
    elif isinstance(command, StartTimer):
        await tx.insert_timer(ex.run_id, command.seq, attrs["fire_at"], event_id)
        fx.wake(attrs["fire_at"])
    elif isinstance(command, CancelTimer):
        started = await tx.delete_timer(ex.run_id, command.seq)
        attrs["started_event_id"] = started or 0


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
    await executions.flush_inbox(tx, ex, now)
    ex.wft_attempt = row.attempt + 1
    ex.last_failure = {
        "message": f"Workflow task timed out: no completion within {row.lease_seconds:g}s "
        "(worker lost or blocked)",
        "kind": "timeout",
        "attempt": row.attempt,
        "time": now,
    }
    _release(row, visible_at=now)
    row.attempt += 1
    await tx.update_task(row)
    ex.wft_state = WftState.SCHEDULED
    await tx.update_execution(ex)
    fx.task_ready(row.namespace, row.task_queue, TaskKind.WORKFLOW)


__all__ = ["claim", "complete", "extend_lease", "fail", "lease_expired"]


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
