"""History events: what happened to a workflow execution, numbered 1..n, append-only.

Each event is ``(event_id, event_type, event_time, attributes)``. Attributes are plain JSON
values except payloads, which are :class:`Payload` objects in memory and
``{"metadata": ..., "data": ...}`` in JSON.

A workflow task's boundary is its ``WorkflowTaskCompleted`` event: the input events before it
(start, activity results, timers fired, signals, cancel requests) are what that activation of
the workflow code saw, and the command events written right after it (activity scheduled,
timer started, workflow completed, ...) are what the code decided. Inputs that arrive while a
workflow task is in flight are buffered and appended after that task's commands, so replay
sees exactly what the first run saw. ``WorkflowTaskCompleted`` also records the activation's
time, which is what ``workflow.now()`` returns, on replay as on the first run.

Attributes by type (``seq`` numbers a workflow's commands of one kind, from 1). The events
that carry a call across (workflow started, signaled, activity scheduled, child initiated,
external signal initiated, continued as new, update accepted) also hold ``header`` (name ->
payload, Temporal's headers, what interceptors put on a call) when it is not empty; events
written before headers existed simply have none.

========================================  ===============================================
WorkflowExecutionStarted                  workflow_type, task_queue, input, workflow_id,
                                          attempt, randomness_seed, task_timeout,
                                          execution_timeout, run_timeout, memo
WorkflowTaskCompleted                     time, identity, history_size (before this
                                          event), suggest_continue_as_new (only when true)
WorkflowTaskFailed                        failure, attempt, identity (informational); a
                                          reset's record also: cause ("ResetWorkflow"),
                                          base_run_id, new_run_id, reset_event_id
ActivityTaskScheduled                     seq, activity_id, activity_type, task_queue, input,
                                          schedule_to_close_timeout, schedule_to_start_timeout,
                                          start_to_close_timeout, heartbeat_timeout,
                                          retry_policy
ActivityTaskStarted                       scheduled_event_id, seq, attempt, identity
ActivityTaskCompleted                     scheduled_event_id, seq, result
ActivityTaskFailed                        scheduled_event_id, seq, failure, retry_state
ActivityTaskTimedOut                      scheduled_event_id, seq, failure, retry_state
ActivityTaskCancelRequested               scheduled_event_id, seq
ActivityTaskCanceled                      scheduled_event_id, seq, details
TimerStarted                              seq, duration, fire_at
TimerFired                                seq, started_event_id
TimerCanceled                             seq, started_event_id
WorkflowExecutionSignaled                 signal_name, input, identity
WorkflowExecutionCancelRequested          reason, identity
WorkflowExecutionCompleted                result
WorkflowExecutionFailed                   failure
WorkflowExecutionCanceled                 details
WorkflowExecutionTerminated               reason, identity, new_run_id (by a reset)
WorkflowExecutionContinuedAsNew           new_run_id, workflow_type, task_queue, input, ...
WorkflowExecutionTimedOut                 timeout (run or execution), new_run_id (on retry)
MarkerRecorded                            marker_name ("patch"), patch_id, deprecated
WorkflowPropertiesModified                memo (the keys upserted; None removes a key)
UpsertWorkflowSearchAttributes            search_attributes (name -> {type, values} or None)
WorkflowExecutionUpdateAccepted           update_id, name, input (replay redelivers it)
WorkflowExecutionUpdateCompleted          update_id, result or failure
StartChildWorkflowExecutionInitiated      seq, workflow_id, workflow_type, task_queue, input,
                                          parent_close_policy, timeouts, retry_policy, memo
ChildWorkflowExecutionStarted             seq, workflow_id, run_id (or ...StartFailed: cause)
ChildWorkflowExecution{Completed,Failed,  seq, workflow_id, run_id, result / failure
Canceled,Terminated,TimedOut}
SignalExternalWorkflowExecutionInitiated  seq, workflow_id, run_id, signal_name, input
ExternalWorkflowExecutionSignaled         seq (or SignalExternal...Failed: seq, cause)
RequestCancelExternal...Initiated         seq, workflow_id, run_id
ExternalWorkflowExecutionCancelRequested  seq (or RequestCancelExternal...Failed: seq, cause)
========================================  ===============================================
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

import orjson

from perdure._common.payload import Payload


class EventType(enum.StrEnum):
    """The kinds of history event."""

    WORKFLOW_EXECUTION_STARTED = "WorkflowExecutionStarted"
    WORKFLOW_TASK_COMPLETED = "WorkflowTaskCompleted"
    WORKFLOW_TASK_FAILED = "WorkflowTaskFailed"
    ACTIVITY_TASK_SCHEDULED = "ActivityTaskScheduled"
    ACTIVITY_TASK_STARTED = "ActivityTaskStarted"
    ACTIVITY_TASK_COMPLETED = "ActivityTaskCompleted"
    ACTIVITY_TASK_FAILED = "ActivityTaskFailed"
    ACTIVITY_TASK_TIMED_OUT = "ActivityTaskTimedOut"
    ACTIVITY_TASK_CANCEL_REQUESTED = "ActivityTaskCancelRequested"
    ACTIVITY_TASK_CANCELED = "ActivityTaskCanceled"
    TIMER_STARTED = "TimerStarted"
    TIMER_FIRED = "TimerFired"
    TIMER_CANCELED = "TimerCanceled"
    WORKFLOW_EXECUTION_SIGNALED = "WorkflowExecutionSignaled"
    WORKFLOW_EXECUTION_CANCEL_REQUESTED = "WorkflowExecutionCancelRequested"
    WORKFLOW_EXECUTION_COMPLETED = "WorkflowExecutionCompleted"
    WORKFLOW_EXECUTION_FAILED = "WorkflowExecutionFailed"
    WORKFLOW_EXECUTION_CANCELED = "WorkflowExecutionCanceled"
    WORKFLOW_EXECUTION_TERMINATED = "WorkflowExecutionTerminated"
    WORKFLOW_EXECUTION_CONTINUED_AS_NEW = "WorkflowExecutionContinuedAsNew"
    WORKFLOW_EXECUTION_TIMED_OUT = "WorkflowExecutionTimedOut"
    MARKER_RECORDED = "MarkerRecorded"
    WORKFLOW_PROPERTIES_MODIFIED = "WorkflowPropertiesModified"
    UPSERT_WORKFLOW_SEARCH_ATTRIBUTES = "UpsertWorkflowSearchAttributes"
    WORKFLOW_EXECUTION_UPDATE_ACCEPTED = "WorkflowExecutionUpdateAccepted"
    WORKFLOW_EXECUTION_UPDATE_COMPLETED = "WorkflowExecutionUpdateCompleted"
    START_CHILD_WORKFLOW_EXECUTION_INITIATED = "StartChildWorkflowExecutionInitiated"
    START_CHILD_WORKFLOW_EXECUTION_FAILED = "StartChildWorkflowExecutionFailed"
    CHILD_WORKFLOW_EXECUTION_STARTED = "ChildWorkflowExecutionStarted"
    CHILD_WORKFLOW_EXECUTION_COMPLETED = "ChildWorkflowExecutionCompleted"
    CHILD_WORKFLOW_EXECUTION_FAILED = "ChildWorkflowExecutionFailed"
    CHILD_WORKFLOW_EXECUTION_CANCELED = "ChildWorkflowExecutionCanceled"
    CHILD_WORKFLOW_EXECUTION_TERMINATED = "ChildWorkflowExecutionTerminated"
    CHILD_WORKFLOW_EXECUTION_TIMED_OUT = "ChildWorkflowExecutionTimedOut"
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED = "SignalExternalWorkflowExecutionInitiated"
    SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED = "SignalExternalWorkflowExecutionFailed"
    EXTERNAL_WORKFLOW_EXECUTION_SIGNALED = "ExternalWorkflowExecutionSignaled"
    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED = (
        "RequestCancelExternalWorkflowExecutionInitiated"
    )
    REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED = (
        "RequestCancelExternalWorkflowExecutionFailed"
    )
    EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED = "ExternalWorkflowExecutionCancelRequested"


# Events a workflow activation reacts to. Command events are the decisions the code recorded;
# the rest (task failed, activity started) are informational and skipped by replay.
INPUT_EVENTS = frozenset(
    {
        EventType.WORKFLOW_EXECUTION_STARTED,
        EventType.ACTIVITY_TASK_COMPLETED,
        EventType.ACTIVITY_TASK_FAILED,
        EventType.ACTIVITY_TASK_TIMED_OUT,
        EventType.ACTIVITY_TASK_CANCELED,
        EventType.TIMER_FIRED,
        EventType.WORKFLOW_EXECUTION_SIGNALED,
        EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED,
        EventType.START_CHILD_WORKFLOW_EXECUTION_FAILED,
        EventType.CHILD_WORKFLOW_EXECUTION_STARTED,
        EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED,
        EventType.CHILD_WORKFLOW_EXECUTION_FAILED,
        EventType.CHILD_WORKFLOW_EXECUTION_CANCELED,
        EventType.CHILD_WORKFLOW_EXECUTION_TERMINATED,
        EventType.CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
        EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
        EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
        EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
        EventType.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
    }
)
COMMAND_EVENTS = frozenset(
    {
        EventType.ACTIVITY_TASK_SCHEDULED,
        EventType.ACTIVITY_TASK_CANCEL_REQUESTED,
        EventType.TIMER_STARTED,
        EventType.TIMER_CANCELED,
        EventType.WORKFLOW_EXECUTION_COMPLETED,
        EventType.WORKFLOW_EXECUTION_FAILED,
        EventType.WORKFLOW_EXECUTION_CANCELED,
        EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        EventType.MARKER_RECORDED,
        EventType.WORKFLOW_PROPERTIES_MODIFIED,
        EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED,
        EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED,
        EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
    }
)
# A run's history this long or this large should continue as new (Temporal's thresholds).
# The store records the verdict in each WorkflowTaskCompleted event (when true), so replay
# sees what the first run saw even if these numbers change in a later release.
CONTINUE_AS_NEW_SUGGESTED_EVENTS = 4096
CONTINUE_AS_NEW_SUGGESTED_BYTES = 4 * 1024 * 1024


def continue_as_new_suggested(history_length: int, history_size: int) -> bool:
    """Whether a workflow task at this length (counting its own WorkflowTaskCompleted) and
    size should be told to continue as new."""
    return (
        history_length >= CONTINUE_AS_NEW_SUGGESTED_EVENTS
        or history_size >= CONTINUE_AS_NEW_SUGGESTED_BYTES
    )


CLOSE_EVENTS = frozenset(
    {
        EventType.WORKFLOW_EXECUTION_COMPLETED,
        EventType.WORKFLOW_EXECUTION_FAILED,
        EventType.WORKFLOW_EXECUTION_CANCELED,
        EventType.WORKFLOW_EXECUTION_TERMINATED,
        EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        EventType.WORKFLOW_EXECUTION_TIMED_OUT,
    }
)


@dataclass(slots=True)
class HistoryEvent:
    """One event of a workflow execution's history."""

    event_id: int
    event_type: EventType
    event_time: float
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type.value,
            "event_time": self.event_time,
            "attributes": _payloads_to_json(self.attributes),
        }

    @staticmethod
    def from_json_dict(obj: dict[str, Any]) -> HistoryEvent:
        return HistoryEvent(
            event_id=obj["event_id"],
            event_type=EventType(obj["event_type"]),
            event_time=obj["event_time"],
            attributes=_payloads_from_json(obj.get("attributes", {})),
        )


def encode_attributes(attributes: dict[str, Any]) -> bytes:
    """Attributes as stored: JSON bytes."""
    # orjson calls _json_default only where a Payload (or a value it cannot write) occurs,
    # so the attributes are not walked, nor copied, in Python first.
    return orjson.dumps(attributes, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATACLASS)


def decode_attributes(data: bytes | str) -> dict[str, Any]:
    """Read attributes written by :func:`encode_attributes`.

    Raises:
        ValueError: the data is not what ``encode_attributes`` writes (a corrupted row).
    """
    value: dict[str, Any] = orjson.loads(data)
    # Most events hold no payload: then there is nothing to look for. (A key spelled with
    # escapes, which orjson never writes, would hide "metadata" from this test: walk then too.)
    # (Only for str and bytes: `in` on a memoryview compares single bytes.)
    if isinstance(data, str):
        if "metadata" not in data and "\\" not in data:
            return value
    elif isinstance(data, bytes) and b"metadata" not in data and b"\\" not in data:
        return value
    try:
        revived: dict[str, Any] = _revive_payloads(value)
    except (TypeError, AttributeError, ValueError) as exc:
        # Only a row changed outside perdure holds a payload of the wrong shape.
        raise ValueError(
            f"A stored event holds a malformed payload ({type(exc).__name__}: {exc}); the "
            "database row was changed outside perdure"
        ) from exc
    return revived


def _json_default(value: Any) -> Any:
    if isinstance(value, Payload):
        return value.to_json()
    if isinstance(value, tuple):  # a named tuple: orjson writes only plain tuples itself
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Any other dataclass as orjson writes dataclasses (public fields only, no Payload
        # conversion inside), which the pass-through option turned off for Payload's sake.
        return orjson.Fragment(orjson.dumps(value))
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _is_payload_json(value: dict[str, Any]) -> bool:
    return len(value) == 2 and "metadata" in value and "data" in value


def _revive_payloads(value: Any) -> Any:
    """Payloads in place of their JSON form, in a value orjson has just parsed (plain dicts
    and lists nobody else holds, so they are changed in place rather than copied)."""
    if type(value) is dict:
        if _is_payload_json(value):
            return Payload.from_json(value)
        _revive_in_dict(value)
    elif type(value) is list:
        _revive_in_list(value)
    return value


def _revive_in_dict(value: dict[str, Any]) -> None:
    for k, v in value.items():
        t = type(v)
        if t is dict:
            if len(v) == 2 and "metadata" in v and "data" in v:
                value[k] = Payload.from_json(v)  # replaces a value: the keys stay as they are
            else:
                _revive_in_dict(v)
        elif t is list:
            _revive_in_list(v)


def _revive_in_list(value: list[Any]) -> None:
    for i, v in enumerate(value):
        t = type(v)
        if t is dict:
            if len(v) == 2 and "metadata" in v and "data" in v:
                value[i] = Payload.from_json(v)
            else:
                _revive_in_dict(v)
        elif t is list:
            _revive_in_list(v)


def _payloads_to_json(value: Any) -> Any:
    t = type(value)
    if t is dict:
        return {k: _payloads_to_json(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [_payloads_to_json(v) for v in value]
    if t is str or t is int or t is float or value is None:
        return value
    if isinstance(value, Payload):
        return value.to_json()
    if isinstance(value, dict):
        return {k: _payloads_to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_payloads_to_json(v) for v in value]
    return value


def _payloads_from_json(value: Any) -> Any:
    """Like :func:`_revive_payloads`, for a caller's value: it is copied, not changed."""
    t = type(value)
    if t is str or t is int or t is float or value is None:
        return value
    if t is dict or isinstance(value, dict):
        if _is_payload_json(value):
            return Payload.from_json(value)
        return {k: _payloads_from_json(v) for k, v in value.items()}
    if t is list or isinstance(value, list):
        return [_payloads_from_json(v) for v in value]
    return value
