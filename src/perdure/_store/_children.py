"""The rules for child workflows and for signalling or cancelling other workflows: each is
started (or delivered) in the same transaction as the command that asks for it."""

from __future__ import annotations

from typing import Any

from perdure._common.events import EventType
from perdure._common.run_ids import new_run_id
from perdure._errors import WorkflowAlreadyStartedError, WorkflowNotFoundError
from perdure._store import _crash as crash
from perdure._store import _executions as executions
from perdure._store import _starts as starts
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import Execution, PendingChild, StartWorkflowRequest
from perdure.common._enums import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from perdure.common._priority import merge_priority

Input = tuple[EventType, dict[str, Any]]


async def start_child(
    tx: Tx, parent: Execution, attrs: dict[str, Any], now: float, fx: Effects
) -> Input:
    """Start the child a parent's command asked for; returns the parent's input event."""
    parent.children_started = True  # written with the rest of the parent's task
    seq = attrs["seq"]
    request = StartWorkflowRequest(
        namespace=parent.namespace,
        workflow_id=attrs["workflow_id"],
        workflow_type=attrs["workflow_type"],
        task_queue=attrs["task_queue"],
        input=attrs["input"],
        run_id=new_run_id(),
        task_timeout=attrs.get("task_timeout") or 10.0,
        execution_timeout=attrs.get("execution_timeout"),
        run_timeout=attrs.get("run_timeout"),
        id_reuse_policy=WorkflowIDReusePolicy(attrs.get("id_reuse_policy") or 1),
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        memo=attrs.get("memo"),
        retry_policy=attrs.get("retry_policy"),
        search_attributes=attrs.get("search_attributes"),
        header=attrs.get("header"),
        priority=merge_priority(attrs.get("priority"), parent.priority),
        parent={
            "namespace": parent.namespace,
            "workflow_id": parent.workflow_id,
            "run_id": parent.run_id,
            "seq": seq,
            "close_policy": attrs.get("parent_close_policy") or 1,
            "initiated_event_id": attrs.get("initiated_event_id", 0),
        },
    )
    try:
        started = await starts.start_workflow(tx, request, now, fx)
        if crash.hook is not None:
            crash.hook("after_child_start_before_record")
    except WorkflowAlreadyStartedError:
        return (
            EventType.START_CHILD_WORKFLOW_EXECUTION_FAILED,
            {"seq": seq, "workflow_id": request.workflow_id, "cause": "WorkflowAlreadyStarted"},
        )
    return (
        EventType.CHILD_WORKFLOW_EXECUTION_STARTED,
        {"seq": seq, "workflow_id": request.workflow_id, "run_id": started.run_id},
    )


def pending(child: Execution) -> PendingChild:
    """An open child, for its parent's ``describe()``."""
    parent = child.parent or {}
    return PendingChild(
        workflow_id=child.workflow_id,
        run_id=child.run_id,
        workflow_type=child.workflow_type,
        initiated_event_id=int(parent.get("initiated_event_id", 0)),
        parent_close_policy=int(parent.get("close_policy", 1)),
    )


async def signal_external(
    tx: Tx, source: Execution, attrs: dict[str, Any], now: float, fx: Effects
) -> Input:
    seq = attrs["seq"]
    try:
        await executions.signal(
            tx,
            source.namespace,
            attrs["workflow_id"],
            attrs.get("run_id"),
            attrs["signal_name"],
            attrs.get("input", []),
            f"workflow {source.workflow_id}",
            now,
            fx,
            attrs.get("header"),
        )
    except WorkflowNotFoundError as exc:
        return (
            EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
            {"seq": seq, "cause": "WorkflowNotFound", "message": str(exc)},
        )
    return EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED, {"seq": seq}


async def cancel_external(
    tx: Tx, source: Execution, attrs: dict[str, Any], now: float, fx: Effects
) -> Input:
    seq = attrs["seq"]
    try:
        await executions.request_cancel(
            tx,
            source.namespace,
            attrs["workflow_id"],
            attrs.get("run_id"),
            f"Requested by workflow {source.workflow_id}",
            f"workflow {source.workflow_id}",
            now,
            fx,
        )
    except WorkflowNotFoundError as exc:
        return (
            EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
            {"seq": seq, "cause": "WorkflowNotFound", "message": str(exc)},
        )
    return EventType.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED, {"seq": seq}
