"""The rules that make a run: a start (with its ID reuse and conflict policies), a
continue-as-new, a retry of a run that failed or timed out, and the run timeout itself.

Written once against the ``Tx`` protocol; every function runs inside one transaction.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from typing import Any

from perdure._common.events import EventType
from perdure._common.run_ids import new_run_id
from perdure._common.status import WorkflowExecutionStatus
from perdure._errors import WorkflowAlreadyStartedError
from perdure._store import _executions as executions
from perdure._store import _visibility as visibility
from perdure._store._eager import EagerWorkflowTask
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import (
    Execution,
    StartResult,
    StartWorkflowRequest,
    TaskKind,
    UpdateState,
)
from perdure.common._enums import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from perdure.common._retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class RunSpec:
    """What a new run is: its start event's contents, its timeouts and where it stands in
    its execution (a start's first run, a continued run, a retry). Variants of one are made
    with ``dataclasses.replace``."""

    namespace: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    input: list[Any]
    task_timeout: float
    run_timeout: float | None
    # The deadline the execution timeout set, and that timeout as the execution was started
    # with it (its continued runs and retries carry it on, for workflow.info()).
    execution_deadline: float | None
    retry_policy: dict[str, Any] | None
    attempt: int
    memo: dict[str, Any] | None
    first_run_id: str | None
    continued_run_id: str | None
    identity: str
    run_id: str | None = None
    delay: float = 0.0
    inputs: list[tuple[EventType, dict[str, Any]]] | None = None
    search_attributes: dict[str, Any] | None = None
    parent: dict[str, Any] | None = None
    execution_timeout: float | None = None
    header: dict[str, Any] | None = None
    priority: dict[str, Any] | None = None


async def create_run(
    tx: Tx, spec: RunSpec, now: float, fx: Effects, eager: EagerWorkflowTask | None = None
) -> Execution:
    """Create a run with its start event and its first workflow task (after
    ``spec.delay``)."""
    run_id = spec.run_id or new_run_id()
    ex = Execution(
        run_id=run_id,
        namespace=spec.namespace,
        workflow_id=spec.workflow_id,
        workflow_type=spec.workflow_type,
        task_queue=spec.task_queue,
        status=WorkflowExecutionStatus.RUNNING,
        next_event_id=1,
        start_time=now,
        task_timeout=spec.task_timeout,
        memo=spec.memo,
        attempt=spec.attempt,
        execution_deadline=spec.execution_deadline,
        run_timeout=spec.run_timeout,
        retry_policy=spec.retry_policy,
        first_run_id=spec.first_run_id or run_id,
        parent=spec.parent,
        priority=spec.priority,
    )
    await visibility.set_attributes(tx, ex, spec.search_attributes or {})
    started = {
        "workflow_type": spec.workflow_type,
        "workflow_id": spec.workflow_id,
        "task_queue": spec.task_queue,
        "input": spec.input,
        "attempt": spec.attempt,
        "randomness_seed": secrets.randbits(63),
        "task_timeout": spec.task_timeout,
        "run_timeout": spec.run_timeout,
        "execution_timeout": spec.execution_timeout,
        "execution_deadline": spec.execution_deadline,
        "retry_policy": spec.retry_policy,
        "memo": spec.memo,
        "search_attributes": spec.search_attributes,
        "parent": (
            {k: spec.parent[k] for k in ("namespace", "workflow_id", "run_id")}
            if spec.parent
            else None
        ),
        "continued_run_id": spec.continued_run_id,
        "first_execution_run_id": ex.first_run_id,
        "start_delay": spec.delay or None,
        "identity": spec.identity,
        "priority": spec.priority,
    }
    if spec.header:
        started["header"] = spec.header
    new = await executions.append(
        tx, ex, [(EventType.WORKFLOW_EXECUTION_STARTED, started), *(spec.inputs or [])], now
    )
    await executions.schedule_workflow_task(
        tx, ex, now, fx, delay=spec.delay, eager=eager, appended=new
    )
    deadlines = [
        d
        for d in (
            now + spec.delay + spec.run_timeout if spec.run_timeout else None,
            spec.execution_deadline,
        )
        if d is not None
    ]
    if deadlines:
        await tx.insert_timer(run_id, executions.RUN_TIMEOUT_SEQ, min(deadlines), 1)
        fx.wake(min(deadlines))
    if spec.delay:
        fx.wake(now + spec.delay)
    # Written once it is complete: one statement rather than an insert and an update.
    await tx.insert_execution(ex)
    return ex


async def _dispatch_now(tx: Tx, ex: Execution, now: float, fx: Effects) -> None:
    """A signal-with-start reached a run still waiting out its start delay: as in Temporal,
    the delay is cut short and the run starts now."""
    task = await tx.find_task(ex.run_id, TaskKind.WORKFLOW, 0)
    if task is not None and task.lease_owner is None and task.visible_at > now:
        task.visible_at = now
        await tx.update_task(task)
        fx.task_ready(ex.namespace, ex.task_queue, TaskKind.WORKFLOW)


async def start_workflow(
    tx: Tx,
    req: StartWorkflowRequest,
    now: float,
    fx: Effects,
    eager: EagerWorkflowTask | None = None,
) -> StartResult:
    running = await tx.get_open_execution(req.namespace, req.workflow_id)
    signal_inputs: list[tuple[EventType, dict[str, Any]]] = []
    # The start signal's idempotency key: one the workflow id took already (a retried
    # signal-with-start) signals and starts nothing.
    key = req.start_signal_request_id if req.start_signal is not None else None
    if req.start_signal is not None:
        signal_inputs.append(
            (
                EventType.WORKFLOW_EXECUTION_SIGNALED,
                executions.with_header(
                    req.header,
                    executions.signal_attributes(
                        req.start_signal, req.start_signal_input, req.identity, key
                    ),
                ),
            )
        )
    if running is not None:
        policy = req.id_conflict_policy
        if req.start_signal is not None:  # signal-with-start: signal the running one
            policy = WorkflowIDConflictPolicy.USE_EXISTING
        elif req.id_reuse_policy == WorkflowIDReusePolicy.TERMINATE_IF_RUNNING:
            policy = WorkflowIDConflictPolicy.TERMINATE_EXISTING
        if policy == WorkflowIDConflictPolicy.USE_EXISTING:
            if key and not await tx.add_signal_request(
                req.namespace, req.workflow_id, key, running.run_id
            ):
                signal_inputs = []
            if signal_inputs:
                await executions.deliver(tx, running, signal_inputs, now, fx)
                await _dispatch_now(tx, running, now, fx)
            return StartResult(running.run_id, started=False)
        if policy == WorkflowIDConflictPolicy.FAIL:
            raise WorkflowAlreadyStartedError(
                req.workflow_id, running.workflow_type, run_id=running.run_id
            )
        await executions.terminate(
            tx, running, "Terminated by a new start (TERMINATE_EXISTING)", "", now, fx
        )
    elif key and (took := await tx.signal_request_run(req.namespace, req.workflow_id, key)):
        return StartResult(took, started=False)
    elif req.id_reuse_policy in (
        WorkflowIDReusePolicy.REJECT_DUPLICATE,
        WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    ):
        latest = await tx.get_latest_execution(req.namespace, req.workflow_id)
        if latest is not None and (
            req.id_reuse_policy == WorkflowIDReusePolicy.REJECT_DUPLICATE
            or latest.status
            in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW)
        ):
            raise WorkflowAlreadyStartedError(
                req.workflow_id, latest.workflow_type, run_id=latest.run_id
            )
    spec = RunSpec(
        namespace=req.namespace,
        workflow_id=req.workflow_id,
        workflow_type=req.workflow_type,
        task_queue=req.task_queue,
        input=req.input,
        task_timeout=req.task_timeout,
        run_timeout=req.run_timeout,
        execution_deadline=now + req.execution_timeout if req.execution_timeout else None,
        execution_timeout=req.execution_timeout,
        retry_policy=req.retry_policy,
        attempt=1,
        memo=req.memo,
        first_run_id=None,
        continued_run_id=None,
        identity=req.identity,
        run_id=req.run_id,
        delay=req.start_delay,
        inputs=signal_inputs,
        search_attributes=req.search_attributes,
        parent=req.parent,
        header=req.header,
        priority=req.priority,
    )
    ex = await create_run(tx, spec, now, fx, eager)
    if key:
        await tx.add_signal_request(req.namespace, req.workflow_id, key, ex.run_id)
    return StartResult(ex.run_id, started=True)


def _successor(ex: Execution, run_id: str) -> RunSpec:
    """The run that follows ``ex`` (now closed) in its execution, as it carries it on: the
    fields a continue-as-new or a retry changes are replaced by the caller."""
    return RunSpec(
        namespace=ex.namespace,
        workflow_id=ex.workflow_id,
        workflow_type=ex.workflow_type,
        task_queue=ex.task_queue,
        input=[],
        task_timeout=ex.task_timeout,
        run_timeout=ex.run_timeout,
        execution_deadline=ex.execution_deadline,
        retry_policy=ex.retry_policy,
        attempt=1,
        memo=ex.memo,
        first_run_id=ex.first_run_id,
        continued_run_id=ex.run_id,
        identity="",
        run_id=run_id,
        search_attributes=ex.search_attributes,
        parent=ex.parent,
        priority=ex.priority,
    )


async def start_continued(
    tx: Tx, ex: Execution, attrs: dict[str, Any], now: float, fx: Effects
) -> None:
    """Start the run that ``ex`` (now closed) continued as new into (``attrs`` are its
    continued-as-new event's, with the new run id)."""
    spec = dataclasses.replace(
        _successor(ex, attrs["new_run_id"]),
        workflow_type=attrs["workflow_type"],
        task_queue=attrs["task_queue"],
        input=attrs["input"],
        task_timeout=attrs.get("task_timeout") or ex.task_timeout,
        run_timeout=attrs.get("run_timeout") or ex.run_timeout,
        memo=attrs.get("memo"),
        execution_timeout=await _execution_timeout(tx, ex),
        search_attributes=attrs.get("search_attributes", ex.search_attributes),
        header=attrs.get("header"),
    )
    await create_run(tx, spec, now, fx)
    if not ex.updates_requested:
        return
    await tx.move_requested_updates(ex.run_id, attrs["new_run_id"])
    new = await tx.get_execution(attrs["new_run_id"])
    if new is not None and await tx.updates_in_state(new.run_id, (UpdateState.REQUESTED,)):
        new.updates_requested = True
        await executions.schedule_workflow_task(tx, new, now, fx)
        await tx.update_execution(new)


async def _execution_timeout(tx: Tx, ex: Execution) -> float | None:
    """The execution timeout ``ex``'s execution was started with (its start event's)."""
    if ex.execution_deadline is None:
        return None
    started = await tx.get_history_events(ex.run_id, 0, 1)
    return started[0].attributes.get("execution_timeout") if started else None


def retry_delay(ex: Execution, failure: dict[str, Any] | None, now: float) -> float | None:
    """Seconds until the next attempt of a failed (or timed-out) run, if its retry policy
    allows one; None if not."""
    if not ex.retry_policy:
        return None
    policy = RetryPolicy.from_dict(ex.retry_policy)
    if failure is not None and (
        failure.get("non_retryable")
        or failure.get("type") in (policy.non_retryable_error_types or ())
    ):
        return None
    if policy.maximum_attempts and ex.attempt >= policy.maximum_attempts:
        return None
    delay = policy.backoff(ex.attempt)
    if ex.execution_deadline is not None and now + delay >= ex.execution_deadline:
        return None
    return delay


async def start_retry(
    tx: Tx, ex: Execution, new_run_id: str, delay: float, now: float, fx: Effects
) -> None:
    """Start the next attempt of ``ex`` (now closed) with its original input."""
    started = (await tx.get_history_events(ex.run_id, 0, 1))[0]
    spec = dataclasses.replace(
        _successor(ex, new_run_id),
        input=started.attributes.get("input", []),
        attempt=ex.attempt + 1,
        delay=delay,
        execution_timeout=started.attributes.get("execution_timeout"),
        header=started.attributes.get("header"),
    )
    await create_run(tx, spec, now, fx)


async def timed_out(tx: Tx, ex: Execution, now: float, fx: Effects) -> None:
    """The run (or execution) timeout passed: end the run, retrying it if its policy says."""
    await executions.flush_inbox(tx, ex, now)
    execution = ex.execution_deadline is not None and now >= ex.execution_deadline
    delay = None if execution else retry_delay(ex, None, now)
    attrs: dict[str, Any] = {"timeout": "execution" if execution else "run"}
    if delay is not None:
        attrs["new_run_id"] = new_run_id()
    await executions.append(tx, ex, [(EventType.WORKFLOW_EXECUTION_TIMED_OUT, attrs)], now)
    await executions.close(tx, ex, EventType.WORKFLOW_EXECUTION_TIMED_OUT, attrs, now, fx)
    await tx.update_execution(ex)
    if delay is not None:
        await start_retry(tx, ex, attrs["new_run_id"], delay, now, fx)
