"""The rules for activity tasks: claim, complete, fail with retry policy, cancel, heartbeat,
and the four timeouts."""

from __future__ import annotations

from typing import Any

from perdure._common.events import EventType
from perdure._common.failure import EngineFailure
from perdure._common.status import PendingActivityState
from perdure._errors import RetryState, TimeoutType
from perdure._store import _crash as crash
from perdure._store import _executions as executions
from perdure._store._eager import EagerWorkflowTask
from perdure._store._effects import Effects
from perdure._store._flow import apply_priority, claim_limited
from perdure._store._tx import Tx
from perdure._store._types import (
    ActivityTask,
    ClaimLimits,
    Execution,
    PendingActivity,
    StaleTaskError,
    TaskKind,
    TaskRow,
    TaskToken,
)
from perdure.common._priority import merge_priority
from perdure.common._retry import RetryPolicy


async def claim(
    tx: Tx,
    namespace: str,
    task_queue: str,
    owner: str,
    now: float,
    limit: int,
    fx: Effects,
    limits: ClaimLimits | None = None,
) -> list[ActivityTask]:
    if limits is None:
        rows = await tx.claim_tasks(TaskKind.ACTIVITY, namespace, task_queue, owner, now, limit)
    else:
        rows = await claim_limited(
            tx, TaskKind.ACTIVITY, namespace, task_queue, owner, now, limit, limits
        )
    for row in rows:
        fx.wake(row.deadline)
    if crash.hook is not None and rows:
        crash.hook("after_lease_claim")
    return [activity_task(row, owner, now) for row in rows]


def new_task(ex: Execution, attrs: dict[str, Any], event_id: int, now: float) -> TaskRow:
    """The task row of an activity scheduled at ``now`` by event ``event_id`` of run ``ex``,
    from that ``ActivityTaskScheduled`` event's attributes (its first attempt, not yet
    inserted)."""
    s2s = attrs.get("schedule_to_start_timeout")
    s2c = attrs.get("schedule_to_close_timeout")
    final = now + s2c if s2c else None
    start_deadline = now + s2s if s2s else None
    deadlines = [d for d in (start_deadline, final) if d is not None]
    priority = merge_priority(attrs.get("priority"), ex.priority)
    row = TaskRow(
        task_id=0,
        kind=TaskKind.ACTIVITY,
        namespace=ex.namespace,
        task_queue=attrs["task_queue"],
        run_id=ex.run_id,
        workflow_id=ex.workflow_id,
        ref=attrs["seq"],
        visible_at=now,
        lease_seconds=attrs.get("start_to_close_timeout") or s2c or 0.0,
        attempt=1,
        deadline=min(deadlines) if deadlines else None,
        final_deadline=final,
        heartbeat_timeout=attrs.get("heartbeat_timeout"),
        data={
            "scheduled_event_id": event_id,
            "activity_id": attrs["activity_id"],
            "activity_type": attrs["activity_type"],
            "workflow_type": ex.workflow_type,
            "input": attrs["input"],
            "scheduled_time": now,
            "schedule_to_start_timeout": s2s,
            "start_to_close_timeout": attrs.get("start_to_close_timeout"),
            "schedule_to_close_timeout": s2c,
            "retry_policy": attrs.get("retry_policy"),
            **({"header": attrs["header"]} if attrs.get("header") else {}),
            "priority": priority,
        },
        concurrency_key=attrs.get("concurrency_key"),
    )
    return apply_priority(row, priority)


def activity_task(row: TaskRow, owner: str, now: float) -> ActivityTask:
    """The attempt a worker runs, from its task row as leased to ``owner`` at ``now``."""
    d = row.data
    return ActivityTask(
        token=TaskToken(row.namespace, row.workflow_id, row.run_id, row.ref, row.attempt),
        task_queue=row.task_queue,
        workflow_type=d["workflow_type"],
        activity_id=d["activity_id"],
        activity_type=d["activity_type"],
        input=d["input"],
        attempt=row.attempt,
        scheduled_time=d["scheduled_time"],
        started_time=now,
        start_to_close_timeout=d.get("start_to_close_timeout"),
        schedule_to_close_timeout=d.get("schedule_to_close_timeout"),
        heartbeat_timeout=row.heartbeat_timeout,
        heartbeat_details=d.get("heartbeat_details", []),
        owner=owner,
        header=d.get("header") or {},
        priority=d.get("priority"),
    )


def pending(row: TaskRow, now: float) -> PendingActivity:
    """How an activity task stands, for ``describe()``."""
    d = row.data
    if d.get("cancel_requested"):
        state = PendingActivityState.CANCEL_REQUESTED
    elif row.lease_owner is not None:
        state = PendingActivityState.STARTED
    else:
        state = PendingActivityState.SCHEDULED
    retrying = row.attempt > 1
    backing_off = retrying and row.lease_owner is None and row.visible_at > now
    return PendingActivity(
        activity_id=d["activity_id"],
        activity_type=d["activity_type"],
        state=state,
        heartbeat_details=d.get("heartbeat_details", []),
        last_heartbeat_time=d.get("last_heartbeat"),
        last_started_time=row.started_at if row.started_at is not None else d.get("last_started"),
        attempt=row.attempt,
        maximum_attempts=int((d.get("retry_policy") or {}).get("maximum_attempts") or 0),
        # A retry is scheduled for when its backoff ends.
        scheduled_time=row.visible_at if retrying else d["scheduled_time"],
        expiration_time=row.final_deadline,
        last_failure=d.get("last_failure"),
        last_lease_owner=row.lease_owner or d.get("last_lease_owner"),
        next_attempt_schedule_time=row.visible_at if backing_off else None,
    )


async def _held(tx: Tx, token: TaskToken, owner: str | None) -> TaskRow:
    row = await tx.find_task(token.run_id, TaskKind.ACTIVITY, token.seq)
    if (
        row is None
        or row.attempt != token.attempt
        or row.lease_owner is None
        or (owner is not None and row.lease_owner != owner)
    ):
        raise StaleTaskError(
            f"Activity attempt {token.attempt} (workflow {token.workflow_id}, seq {token.seq}) "
            "is no longer current: it completed, timed out or was retried elsewhere"
        )
    return row


def _slot_freed(row: TaskRow, fx: Effects) -> None:
    """An attempt of a concurrency key settled: the tasks its key held back may be claimed
    now, so the queue's pollers are woken (no other wake-up would tell them)."""
    if row.concurrency_key is not None:
        fx.task_ready(row.namespace, row.task_queue, TaskKind.ACTIVITY)


async def _finish(
    tx: Tx,
    row: TaskRow,
    event_type: EventType,
    attrs: dict[str, Any],
    identity: str,
    now: float,
    fx: Effects,
    eager: EagerWorkflowTask | None = None,
) -> None:
    await tx.delete_task(row.task_id)
    _slot_freed(row, fx)
    ex = await tx.get_execution(row.run_id)
    if ex is None or not ex.is_open:
        return
    base = {"scheduled_event_id": row.data["scheduled_event_id"], "seq": row.ref}
    started = {**base, "attempt": row.attempt, "identity": identity}
    events: list[tuple[EventType, dict[str, Any]]] = []
    if row.started_at is not None:
        events.append((EventType.ACTIVITY_TASK_STARTED, started))
    events.append((event_type, {**base, **attrs}))
    await executions.deliver(tx, ex, events, now, fx, eager)


async def complete(
    tx: Tx,
    token: TaskToken,
    owner: str | None,
    result: Any,
    identity: str,
    now: float,
    fx: Effects,
    eager: EagerWorkflowTask | None = None,
) -> None:
    row = await _held(tx, token, owner)
    await _finish(
        tx, row, EventType.ACTIVITY_TASK_COMPLETED, {"result": result}, identity, now, fx, eager
    )


async def cancelled(
    tx: Tx,
    token: TaskToken,
    owner: str | None,
    details: list[Any],
    identity: str,
    now: float,
    fx: Effects,
    eager: EagerWorkflowTask | None = None,
) -> None:
    row = await _held(tx, token, owner)
    await _finish(
        tx, row, EventType.ACTIVITY_TASK_CANCELED, {"details": details}, identity, now, fx, eager
    )


def _retry_decision(row: TaskRow, failure: dict[str, Any], now: float) -> tuple[RetryState, float]:
    policy = RetryPolicy.from_dict(row.data["retry_policy"])
    if failure.get("non_retryable"):
        return RetryState.NON_RETRYABLE_FAILURE, 0.0
    if failure.get("type") in (policy.non_retryable_error_types or ()):
        return RetryState.NON_RETRYABLE_FAILURE, 0.0
    if policy.maximum_attempts and row.attempt >= policy.maximum_attempts:
        return RetryState.MAXIMUM_ATTEMPTS_REACHED, 0.0
    delay = failure.get("next_retry_delay")
    delay = float(delay) if delay is not None else policy.backoff(row.attempt)
    if row.final_deadline is not None and now + delay > row.final_deadline:
        return RetryState.TIMEOUT, 0.0
    return RetryState.IN_PROGRESS, delay


async def _fail_attempt(
    tx: Tx,
    row: TaskRow,
    failure: dict[str, Any],
    final_event: EventType,
    identity: str,
    now: float,
    fx: Effects,
    eager: EagerWorkflowTask | None = None,
) -> None:
    state, delay = _retry_decision(row, failure, now)
    if state == RetryState.TIMEOUT and failure.get("kind") == "timeout":
        # No time is left for another attempt: that is the schedule-to-close timeout.
        failure = _timeout_failure(TimeoutType.SCHEDULE_TO_CLOSE, row)
    if state == RetryState.IN_PROGRESS:
        # What describe() shows of the failed attempt while the next one waits.
        row.data["last_started"] = row.started_at
        row.data["last_lease_owner"] = row.lease_owner
        row.attempt += 1
        row.lease_owner = None
        row.lease_expires = None
        row.started_at = None
        row.visible_at = now + delay
        row.data["last_failure"] = failure
        row.data.pop("cancel_requested", None)
        row.deadline = row.final_deadline
        await tx.update_task(row)
        fx.wake(row.visible_at)
        _slot_freed(row, fx)
        return
    attrs = {"failure": failure, "retry_state": int(state)}
    await _finish(tx, row, final_event, attrs, identity, now, fx, eager)


async def fail(
    tx: Tx,
    token: TaskToken,
    owner: str | None,
    failure: dict[str, Any],
    identity: str,
    now: float,
    fx: Effects,
    eager: EagerWorkflowTask | None = None,
) -> None:
    row = await _held(tx, token, owner)
    await _fail_attempt(tx, row, failure, EventType.ACTIVITY_TASK_FAILED, identity, now, fx, eager)


async def heartbeat(
    tx: Tx, token: TaskToken, owner: str | None, details: list[Any] | None, now: float
) -> bool:
    """Record progress; returns whether cancellation was requested."""
    row = await _held(tx, token, owner)
    if details is not None:
        row.data["heartbeat_details"] = details
    row.data["last_heartbeat"] = now
    if row.heartbeat_timeout:
        candidates = [now + row.heartbeat_timeout, row.lease_expires, row.final_deadline]
        row.deadline = min(c for c in candidates if c is not None)
    await tx.update_task(row)
    return bool(row.data.get("cancel_requested"))


def _timeout_failure(kind: TimeoutType, row: TaskRow) -> dict[str, Any]:
    return EngineFailure(
        f"activity {kind.name} timeout",
        "TimeoutError",
        kind="timeout",
        non_retryable=kind in (TimeoutType.SCHEDULE_TO_START, TimeoutType.SCHEDULE_TO_CLOSE),
        timeout_type=int(kind),
        last_heartbeat_details=row.data.get("heartbeat_details", []),
    ).to_dict()


async def deadline_passed(tx: Tx, row: TaskRow, now: float, fx: Effects) -> None:
    """A timeout fired for this activity: retry it or record the timeout."""
    if row.final_deadline is not None and now >= row.final_deadline:
        kind = TimeoutType.SCHEDULE_TO_CLOSE
    elif row.lease_owner is None:
        kind = TimeoutType.SCHEDULE_TO_START
    elif row.lease_expires is not None and now >= row.lease_expires:
        kind = TimeoutType.START_TO_CLOSE
    else:
        kind = TimeoutType.HEARTBEAT
    failure = _timeout_failure(kind, row)
    if kind in (TimeoutType.SCHEDULE_TO_START, TimeoutType.SCHEDULE_TO_CLOSE):
        state = (
            RetryState.TIMEOUT
            if kind == TimeoutType.SCHEDULE_TO_CLOSE
            else (RetryState.NON_RETRYABLE_FAILURE)
        )
        attrs = {"failure": failure, "retry_state": int(state)}
        await _finish(tx, row, EventType.ACTIVITY_TASK_TIMED_OUT, attrs, "", now, fx)
        return
    await _fail_attempt(tx, row, failure, EventType.ACTIVITY_TASK_TIMED_OUT, "", now, fx)
