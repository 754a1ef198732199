"""The JSON shapes of the "Operating it" contract, one definition for ``-o json`` and the
HTTP API: a workflow, a described workflow, a failure, and a history's events with their
payloads decoded for people."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from perdure._common.events import HistoryEvent
from perdure._common.payload import Payload
from perdure.client import (
    PendingActivityInfo,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowResetInfo,
)
from perdure.common import TypedSearchAttributes
from perdure.converter import DataConverter

if TYPE_CHECKING:
    from perdure._operate.outcome import Outcome


def rfc3339(moment: datetime | None) -> str | None:
    """A time as RFC 3339 in UTC (``2026-12-07T08:01:02.345Z``), or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def search_attributes_json(attributes: TypedSearchAttributes) -> dict[str, Any]:
    """Search attributes as ``{name: value}`` (datetimes in RFC 3339)."""
    out: dict[str, Any] = {}
    for pair in attributes:
        value = pair.value
        out[pair.key.name] = rfc3339(value) if isinstance(value, datetime) else value
    return out


def workflow_json(wf: WorkflowExecution | WorkflowExecutionDescription) -> dict[str, Any]:
    """``{"workflow_id", "run_id", "workflow_type", "status", "task_queue", "start_time",
    "close_time", "history_length", "memo", "search_attributes", "parent"}``."""
    return {
        "workflow_id": wf.id,
        "run_id": wf.run_id,
        "workflow_type": wf.workflow_type,
        "status": wf.status.name,
        "task_queue": wf.task_queue,
        "start_time": rfc3339(wf.start_time),
        "close_time": rfc3339(wf.close_time),
        "history_length": wf.history_length,
        "memo": wf.memo,
        "search_attributes": search_attributes_json(wf.typed_search_attributes),
        "parent": (
            {"workflow_id": wf.parent_id, "run_id": wf.parent_run_id} if wf.parent_id else None
        ),
    }


def description_json(desc: WorkflowExecutionDescription) -> dict[str, Any]:
    """The workflow shape plus ``pending_activities``, ``pending_children`` and
    ``last_workflow_task_failure`` (what ``describe`` shows)."""
    failure = desc.last_workflow_task_failure
    return {
        **workflow_json(desc),
        "pending_activities": [pending_activity_json(a) for a in desc.pending_activities],
        "pending_children": [
            {
                "workflow_id": c.workflow_id,
                "run_id": c.run_id,
                "workflow_type": c.workflow_type_name,
                "initiated_id": c.initiated_id,
                "parent_close_policy": c.parent_close_policy.name,
            }
            for c in desc.pending_children
        ],
        "reset_from": reset_json(desc.reset_from),
        "reset_to": reset_json(desc.reset_to),
        "last_workflow_task_failure": (
            {
                "message": failure.message,
                "type": failure.type,
                "stack_trace": failure.stack_trace,
                "attempt": failure.attempt,
                "time": rfc3339(failure.time),
            }
            if failure
            else None
        ),
    }


def reset_json(reset: WorkflowResetInfo | None) -> dict[str, Any] | None:
    """A reset the run took part in: ``{"base_run_id", "new_run_id", "event_id", "reason",
    "time"}``."""
    if reset is None:
        return None
    return {
        "base_run_id": reset.base_run_id,
        "new_run_id": reset.new_run_id,
        "event_id": reset.event_id,
        "reason": reset.reason,
        "time": rfc3339(reset.time),
    }


def pending_activity_json(activity: PendingActivityInfo) -> dict[str, Any]:
    """One pending activity, under Temporal's ``PendingActivityInfo`` field names."""
    return {
        "activity_id": activity.activity_id,
        "activity_type": activity.activity_type.name,
        "state": activity.state.name,
        "attempt": activity.attempt,
        "maximum_attempts": activity.maximum_attempts,
        "scheduled_time": rfc3339(activity.scheduled_time),
        "last_started_time": rfc3339(activity.last_started_time),
        "last_heartbeat_time": rfc3339(activity.last_heartbeat_time),
        "heartbeat_details": list(activity.heartbeat_details),
        "last_failure": failure_json(activity.last_failure),
        "last_worker_identity": activity.last_worker_identity,
        "next_attempt_schedule_time": rfc3339(activity.next_attempt_schedule_time),
        "expiration_time": rfc3339(activity.expiration_time),
    }


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """How a workflow ended: ``{"status", "run_id", "result"}`` when it completed,
    ``{"status", "run_id", "failure"}`` when it did not, ``{"status": "RUNNING", "run_id"}``
    while it runs."""
    out: dict[str, Any] = {"status": outcome.status, "run_id": outcome.run_id}
    if outcome.status == "COMPLETED":
        out["result"] = outcome.result
    elif outcome.failure is not None:
        out["failure"] = failure_json(outcome.failure)
    return out


def failure_json(error: BaseException | None) -> dict[str, Any] | None:
    """A failure chain: ``{"message", "type", "stack_trace", "cause"}``, cause nested."""
    if error is None:
        return None
    cause = getattr(error, "cause", None) or error.__cause__
    return {
        "message": str(error),
        "type": getattr(error, "type", None) or type(error).__name__,
        "stack_trace": getattr(error, "stack_trace", "") or "",
        "cause": failure_json(cause) if cause is not error else None,
    }


async def decoded_attributes(
    converter: DataConverter, attributes: dict[str, Any]
) -> dict[str, Any]:
    """An event's attributes with every payload decoded to its JSON value (through the codec);
    a payload that cannot be decoded shows as ``{"undecodable": reason}``."""
    found: list[Payload] = []
    _collect(attributes, found)
    if not found:
        return attributes
    values: list[Any] = []
    for payload in found:
        try:
            values.extend(await converter.decode([payload]))
        except Exception as exc:  # a codec key missing, say: still show the rest
            values.append({"undecodable": f"{type(exc).__name__}: {exc}"})
    it = iter(values)
    return _replace(attributes, it)  # type: ignore[no-any-return]


def _collect(value: Any, found: list[Payload]) -> None:
    if isinstance(value, Payload):
        found.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, found)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, found)


def _replace(value: Any, values: Any) -> Any:
    if isinstance(value, Payload):
        return next(values)
    if isinstance(value, dict):
        return {k: _replace(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace(v, values) for v in value]
    return value


async def events_json(
    converter: DataConverter, events: Sequence[HistoryEvent]
) -> list[dict[str, Any]]:
    """Events as ``{"event_id", "event_time", "event_type", "attributes"}`` with payloads
    decoded (for people and the UI; ``WorkflowHistory.to_json()`` keeps them encoded)."""
    return [
        {
            "event_id": e.event_id,
            "event_time": rfc3339(datetime.fromtimestamp(e.event_time, UTC)),
            "event_type": e.event_type.value,
            "attributes": await decoded_attributes(converter, e.attributes),
        }
        for e in events
    ]
