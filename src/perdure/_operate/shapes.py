"""The JSON shapes of the "Operating it" contract, one definition for ``-o json`` and the
HTTP API: a workflow, a described workflow, a failure, a history's events with their
payloads decoded for people, and a schedule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from perdure._common.events import HistoryEvent
from perdure._common.payload import Payload
from perdure._common.schedule_spec import ScheduleCalendarSpec, ScheduleSpec, describe_calendar
from perdure._store._visibility_query import STATUS_NAMES, parse_query
from perdure.client import (
    PendingActivityInfo,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleListDescription,
    WorkflowExecution,
    WorkflowExecutionCount,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowResetInfo,
)
from perdure.common import TypedSearchAttributes
from perdure.converter import DataConverter
from perdure.converter._visitor import decode_within, map_payloads

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


# "Running" as the query language names a status, to "RUNNING" as the JSON shapes do.
_STATUS_JSON = {name: WorkflowExecutionStatus(i).name for i, name in STATUS_NAMES.items()}


def count_json(
    count: WorkflowExecutionCount, query: str | None, max_count: int | None
) -> dict[str, Any]:
    """``{count}``; with ``GROUP BY ExecutionStatus`` the ``groups`` too; with ``max_count``,
    ``capped``: whether a count (a group's) stopped there."""
    body: dict[str, Any] = {"count": count.count}
    if query and parse_query(query).group_by is not None:
        body["groups"] = [
            {"status": _STATUS_JSON[g.group_values[0]], "count": g.count} for g in count.groups
        ]
    if max_count is not None:
        body["capped"] = any(g.count >= max_count for g in count.groups) or (
            not count.groups and count.count >= max_count
        )
    return body


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
    """An event's attributes with every payload decoded (codec, then converter) to its JSON
    value; a payload that cannot be decoded shows as ``{"undecodable": reason}``."""
    try:
        stored = await decode_within(converter._store_codec, attributes)
    except Exception as exc:  # the codec's key is not here, say: still show the rest
        reason = f"{type(exc).__name__}: {exc}"
        return map_payloads(attributes, lambda _: {"undecodable": reason})  # type: ignore[no-any-return]

    def value(payload: Payload) -> Any:
        try:
            return converter.payload_converter.from_payload(payload)
        except Exception as exc:
            return {"undecodable": f"{type(exc).__name__}: {exc}"}

    return map_payloads(stored, value)  # type: ignore[no-any-return]


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


# -- schedules ---------------------------------------------------------------------------------
def _seconds(value: Any) -> float | None:
    return None if value is None else value.total_seconds()


def calendar_json(cal: ScheduleCalendarSpec) -> dict[str, Any]:
    """A calendar as Temporal's ``StructuredCalendarSpec`` JSON (ranges of ``{"start", "end",
    "step"}``), plus ``"text"``: its fields in cron's order (``second minute hour
    day-of-month month day-of-week year``)."""
    out: dict[str, Any] = {
        name: [{"start": r.start, "end": r.end, "step": r.step} for r in getattr(cal, name)]
        for name in ("second", "minute", "hour", "day_of_month", "month", "year", "day_of_week")
    }
    out["comment"] = cal.comment
    out["text"] = describe_calendar(cal)
    return out


def spec_json(spec: ScheduleSpec) -> dict[str, Any]:
    """``{"calendars", "intervals", "skip", "start_at", "end_at", "jitter",
    "time_zone_name"}``; durations in seconds."""
    return {
        "calendars": [calendar_json(c) for c in spec.calendars],
        "intervals": [
            {"every": i.every.total_seconds(), "offset": _seconds(i.offset)} for i in spec.intervals
        ],
        "skip": [calendar_json(c) for c in spec.skip],
        "start_at": rfc3339(spec.start_at),
        "end_at": rfc3339(spec.end_at),
        "jitter": _seconds(spec.jitter),
        "time_zone_name": spec.time_zone_name,
    }


def _action_results(actions: Sequence[ScheduleActionResult]) -> list[dict[str, Any]]:
    return [
        {
            "scheduled_at": rfc3339(a.scheduled_at),
            "started_at": rfc3339(a.started_at),
            "workflow_id": getattr(a.action, "workflow_id", None),
            "run_id": getattr(a.action, "first_execution_run_id", None),
        }
        for a in actions
    ]


async def schedule_json(desc: ScheduleDescription) -> dict[str, Any]:
    """A described schedule: ``{"schedule_id", "action", "spec", "policy", "state", "info",
    "memo", "search_attributes"}`` (the action's arguments and memo decoded)."""
    schedule, info = desc.schedule, desc.info
    action = schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow):  # the only action there is
        raise TypeError(f"Unknown schedule action {action!r}")
    converter = desc.data_converter
    return {
        "schedule_id": desc.id,
        "action": {
            "workflow_type": action.workflow,
            "workflow_id": action.id,
            "task_queue": action.task_queue,
            "args": (await decoded_attributes(converter, {"a": list(action.args)}))["a"],
            "execution_timeout": _seconds(action.execution_timeout),
            "run_timeout": _seconds(action.run_timeout),
            "task_timeout": _seconds(action.task_timeout),
            "memo": await decoded_attributes(converter, dict(action.memo or {})),
            "search_attributes": search_attributes_json(action.typed_search_attributes),
        },
        "spec": spec_json(schedule.spec),
        "policy": {
            "overlap": schedule.policy.overlap.name,
            "catchup_window": schedule.policy.catchup_window.total_seconds(),
            "pause_on_failure": schedule.policy.pause_on_failure,
        },
        "state": {
            "note": schedule.state.note,
            "paused": schedule.state.paused,
            "limited_actions": schedule.state.limited_actions,
            "remaining_actions": schedule.state.remaining_actions,
        },
        "info": {
            "num_actions": info.num_actions,
            "num_actions_missed_catchup_window": info.num_actions_missed_catchup_window,
            "num_actions_skipped_overlap": info.num_actions_skipped_overlap,
            "running_actions": [
                {
                    "workflow_id": getattr(r, "workflow_id", None),
                    "run_id": getattr(r, "first_execution_run_id", None),
                }
                for r in info.running_actions
            ],
            "recent_actions": _action_results(info.recent_actions),
            "next_action_times": [rfc3339(t) for t in info.next_action_times],
            "created_at": rfc3339(info.created_at),
            "last_updated_at": rfc3339(info.last_updated_at),
        },
        "memo": dict(await desc.memo()),
        "search_attributes": search_attributes_json(desc.typed_search_attributes),
    }


async def schedule_list_json(entry: ScheduleListDescription) -> dict[str, Any]:
    """A listed schedule: ``{"schedule_id", "workflow_type", "spec", "state",
    "recent_actions", "next_action_times", "memo", "search_attributes"}``."""
    schedule, info = entry.schedule, entry.info
    return {
        "schedule_id": entry.id,
        "workflow_type": getattr(schedule.action, "workflow", None) if schedule else None,
        "spec": spec_json(schedule.spec) if schedule else None,
        "state": (
            {"note": schedule.state.note, "paused": schedule.state.paused} if schedule else None
        ),
        "recent_actions": _action_results(info.recent_actions) if info else [],
        "next_action_times": [rfc3339(t) for t in info.next_action_times] if info else [],
        "memo": dict(await entry.memo()),
        "search_attributes": search_attributes_json(entry.typed_search_attributes),
    }
