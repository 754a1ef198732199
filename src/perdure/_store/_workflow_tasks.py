"""The rules for workflow tasks: claim, complete (commands to events, tasks and timers, all in
one transaction, fenced), fail, and time out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perdure._common.commands import CLOSE_COMMANDS, Command, RejectUpdate
from perdure._common.events import INPUT_EVENTS, EventType, continue_as_new_suggested
from perdure._store import _crash as crash
from perdure._store import _executions as executions
from perdure._store._commands import HANDLERS, Completion
from perdure._store._eager import EagerActivities
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import (
    LEASE_RAN_OUT,
    NOT_RECORDED,
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
    if row is None or row.lease_owner != task.owner or row.attempt != task.attempt:
        raise _stale(task)
    return _fresh(task, row, ex)


async def _drop(tx: Tx, row: TaskRow) -> None:
    """Delete the task's row (none if it was never written: ``complete``'s ``unwritten``)."""
    if row.task_id:
        await tx.delete_task(row.task_id)


def _stale(task: WorkflowTask) -> StaleTaskError:
    return StaleTaskError(
        f"Workflow task of {task.workflow_id} (attempt {task.attempt}) is no longer held by "
        "this worker"
    )


async def complete(
    tx: Tx,
    task: WorkflowTask,
    commands: Sequence[Command],
    identity: str,
    now: float,
    fx: Effects,
    eager: EagerActivities | None = None,
    unwritten: tuple[TaskRow, Execution] | None = None,
) -> int | None:
    """Record the task's commands (activities on the worker's own queue leased to it at once
    when it offers ``eager``). Returns the id of the first event after them, or None
    when the commands were refused because inputs arrived that the code has not seen while
    it was deciding to close (the task is then run again with them). ``unwritten``: the
    task was scheduled in this transaction and its row never written (its run as this
    transaction holds it)."""
    row, ex = await _held(tx, task) if unwritten is None else _fresh(task, *unwritten)
    closing = any(isinstance(c, CLOSE_COMMANDS) for c in commands)
    if closing and tx.inputs_buffered(ex):
        # Temporal's rule: a workflow cannot close over signals it has not seen.
        await _refuse_closing(tx, row, ex, now, fx)
        return None
    await _drop(tx, row)
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
    done = Completion(tx, ex, task, now, fx, eager)
    for command in commands:
        event_id = ex.next_event_id
        attrs = command.attributes()
        await HANDLERS[type(command)](done, command, attrs, event_id)
        if command.event_type is None:  # a rejected update leaves no event
            continue
        await executions.append(tx, ex, [(command.event_type, attrs)], now)
        if isinstance(command, CLOSE_COMMANDS):
            return await done.close(command.event_type, attrs)
    return await done.settle()


def _fresh(task: WorkflowTask, row: TaskRow, ex: Execution | None) -> tuple[TaskRow, Execution]:
    """The task's run, if the task is still the one it is due (its row held, or scheduled
    in this transaction and never written)."""
    if ex is None or ex.next_event_id != task.next_event_id or not ex.is_open:
        raise _stale(task)
    return row, ex


async def _refuse_closing(tx: Tx, row: TaskRow, ex: Execution, now: float, fx: Effects) -> None:
    """Drop the task's commands and run a new task over the inputs they did not see."""
    await _drop(tx, row)
    ex.wft_state = WftState.NONE
    await executions.flush_inbox(tx, ex, now)
    await executions.schedule_workflow_task(tx, ex, now, fx)
    await tx.update_execution(ex)


async def _only_rejected_updates(tx: Tx, ex: Any, commands: Sequence[Command]) -> bool:
    """A task that saw no new input and only rejected updates leaves no trace in history
    (Temporal's speculative workflow task): replay has nothing to redo for it."""
    if not commands or not all(isinstance(c, RejectUpdate) for c in commands):
        return False
    last = await tx.get_history_events(ex.run_id, ex.next_event_id - 2, 1)
    return bool(last) and last[0].event_type not in INPUT_EVENTS


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


async def extend_lease(tx: Tx, task: WorkflowTask, now: float, fx: Effects) -> bool:
    """The worker is still working on the task (it waits for the CPU, or runs its local
    activities): renew the lease so no other worker takes it over. False if the worker no
    longer holds it."""
    try:
        row, _ = await _held(tx, task)
    except StaleTaskError:
        return False
    row.lease_expires = now + row.lease_seconds
    row.deadline = row.lease_expires
    await tx.update_task(row)
    fx.wake(row.deadline)
    return True


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
    await _run_again(tx, row, ex, {"message": message, "kind": LEASE_RAN_OUT}, now, fx)


async def hand_back(tx: Tx, task: WorkflowTask, reason: str, now: float, fx: Effects) -> None:
    """The worker could not record the task (a store call failed, so it cannot know whether
    its commands were recorded): let a worker take it again now, as if its lease had run
    out. A task whose commands were recorded is no longer held: ``StaleTaskError``.

    Without it, the task would wait for its lease to run out, and on the time-skipping test
    clock (which stands still while a task is leased) that never comes."""
    row, ex = await _held(tx, task)
    failure = {"message": f"Workflow task was not recorded: {reason}", "kind": NOT_RECORDED}
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
