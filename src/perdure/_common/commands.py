"""Commands: what one activation of workflow code decided, in the order it decided it.

The runtime returns them; the store turns each into its history event and the tasks or
timers it asks for, in the same transaction that settles the workflow task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perdure._common.events import EventType
from perdure._common.payload import Payload


def _with_header(header: dict[str, Payload] | None, attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` with the interceptors' headers, if any: an event without headers is written
    as it was before headers existed, so old and new histories read alike."""
    if header:
        attrs["header"] = header
    return attrs


def _with_flow(
    priority: dict[str, Any] | None, concurrency_key: str | None, attrs: dict[str, Any]
) -> dict[str, Any]:
    if priority is not None:
        attrs["priority"] = priority
    if concurrency_key is not None:
        attrs["concurrency_key"] = concurrency_key
    return attrs


@dataclass(slots=True)
class ScheduleActivity:
    seq: int
    activity_id: str
    activity_type: str
    task_queue: str
    input: list[Payload]
    schedule_to_close_timeout: float | None
    schedule_to_start_timeout: float | None
    start_to_close_timeout: float | None
    heartbeat_timeout: float | None
    retry_policy: dict[str, Any]
    cancellation_type: int
    header: dict[str, Payload] | None = None
    # Flow control (recorded only when set, so histories without it stay as they were).
    priority: dict[str, Any] | None = None
    concurrency_key: str | None = None

    event_type = EventType.ACTIVITY_TASK_SCHEDULED

    def attributes(self) -> dict[str, Any]:
        return _with_header(
            self.header,
            _with_flow(
                self.priority,
                self.concurrency_key,
                {
                    "seq": self.seq,
                    "activity_id": self.activity_id,
                    "activity_type": self.activity_type,
                    "task_queue": self.task_queue,
                    "input": self.input,
                    "schedule_to_close_timeout": self.schedule_to_close_timeout,
                    "schedule_to_start_timeout": self.schedule_to_start_timeout,
                    "start_to_close_timeout": self.start_to_close_timeout,
                    "heartbeat_timeout": self.heartbeat_timeout,
                    "retry_policy": self.retry_policy,
                },
            ),
        )

    def describe(self) -> str:
        return f"ScheduleActivity(seq={self.seq}, type={self.activity_type!r})"


@dataclass(slots=True)
class RequestCancelActivity:
    seq: int

    event_type = EventType.ACTIVITY_TASK_CANCEL_REQUESTED

    def attributes(self) -> dict[str, Any]:
        return {"seq": self.seq}

    def describe(self) -> str:
        return f"RequestCancelActivity(seq={self.seq})"


@dataclass(slots=True)
class StartTimer:
    seq: int
    duration: float

    event_type = EventType.TIMER_STARTED

    def attributes(self) -> dict[str, Any]:
        return {"seq": self.seq, "duration": self.duration}

    def describe(self) -> str:
        return f"StartTimer(seq={self.seq}, duration={self.duration}s)"


@dataclass(slots=True)
class CancelTimer:
    seq: int

    event_type = EventType.TIMER_CANCELED

    def attributes(self) -> dict[str, Any]:
        return {"seq": self.seq}

    def describe(self) -> str:
        return f"CancelTimer(seq={self.seq})"


@dataclass(slots=True)
class CompleteWorkflow:
    result: Payload

    event_type = EventType.WORKFLOW_EXECUTION_COMPLETED

    def attributes(self) -> dict[str, Any]:
        return {"result": self.result}

    def describe(self) -> str:
        return "CompleteWorkflow"


@dataclass(slots=True)
class FailWorkflow:
    failure: dict[str, Any]

    event_type = EventType.WORKFLOW_EXECUTION_FAILED

    def attributes(self) -> dict[str, Any]:
        return {"failure": self.failure}

    def describe(self) -> str:
        return f"FailWorkflow({self.failure.get('message', '')!r})"


@dataclass(slots=True)
class CancelWorkflow:
    details: list[Payload] = field(default_factory=list)

    event_type = EventType.WORKFLOW_EXECUTION_CANCELED

    def attributes(self) -> dict[str, Any]:
        return {"details": self.details}

    def describe(self) -> str:
        return "CancelWorkflow"


@dataclass(slots=True)
class ContinueAsNew:
    workflow_type: str
    task_queue: str
    input: list[Payload]
    run_timeout: float | None
    task_timeout: float | None
    memo: dict[str, Any] | None
    header: dict[str, Payload] | None = None

    event_type = EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW

    def attributes(self) -> dict[str, Any]:
        return _with_header(
            self.header,
            {
                "workflow_type": self.workflow_type,
                "task_queue": self.task_queue,
                "input": self.input,
                "run_timeout": self.run_timeout,
                "task_timeout": self.task_timeout,
                "memo": self.memo,
            },
        )

    def describe(self) -> str:
        return f"ContinueAsNew(type={self.workflow_type!r})"


@dataclass(slots=True)
class RecordPatch:
    """A ``workflow.patched`` / ``deprecate_patch`` decision, recorded as a marker."""

    patch_id: str
    deprecated: bool

    event_type = EventType.MARKER_RECORDED

    def attributes(self) -> dict[str, Any]:
        return {"marker_name": "patch", "patch_id": self.patch_id, "deprecated": self.deprecated}

    def describe(self) -> str:
        return f"RecordPatch({self.patch_id!r})"


@dataclass(slots=True)
class UpsertMemo:
    memo: dict[str, Any]

    event_type = EventType.WORKFLOW_PROPERTIES_MODIFIED

    def attributes(self) -> dict[str, Any]:
        return {"memo": self.memo}

    def describe(self) -> str:
        return f"UpsertMemo({sorted(self.memo)})"


@dataclass(slots=True)
class UpsertSearchAttributes:
    search_attributes: dict[str, Any]

    event_type = EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES

    def attributes(self) -> dict[str, Any]:
        return {"search_attributes": self.search_attributes}

    def describe(self) -> str:
        return f"UpsertSearchAttributes({sorted(self.search_attributes)})"


@dataclass(slots=True)
class AcceptUpdate:
    update_id: str
    name: str
    input: list[Payload]
    header: dict[str, Payload] | None = None

    event_type = EventType.WORKFLOW_EXECUTION_UPDATE_ACCEPTED

    def attributes(self) -> dict[str, Any]:
        return _with_header(
            self.header, {"update_id": self.update_id, "name": self.name, "input": self.input}
        )

    def describe(self) -> str:
        return f"AcceptUpdate({self.update_id!r})"


@dataclass(slots=True)
class RejectUpdate:
    """A validator refused the update: no event; the caller gets the failure."""

    update_id: str
    failure: dict[str, Any]

    event_type = None

    def attributes(self) -> dict[str, Any]:
        return {"update_id": self.update_id, "failure": self.failure}

    def describe(self) -> str:
        return f"RejectUpdate({self.update_id!r})"


@dataclass(slots=True)
class CompleteUpdate:
    update_id: str
    result: Payload | None
    failure: dict[str, Any] | None

    event_type = EventType.WORKFLOW_EXECUTION_UPDATE_COMPLETED

    def attributes(self) -> dict[str, Any]:
        if self.failure is not None:
            return {"update_id": self.update_id, "failure": self.failure}
        return {"update_id": self.update_id, "result": self.result}

    def describe(self) -> str:
        return f"CompleteUpdate({self.update_id!r})"


@dataclass(slots=True)
class StartChildWorkflow:
    seq: int
    workflow_id: str
    workflow_type: str
    task_queue: str
    input: list[Payload]
    parent_close_policy: int
    execution_timeout: float | None
    run_timeout: float | None
    task_timeout: float | None
    retry_policy: dict[str, Any] | None
    id_reuse_policy: int
    memo: dict[str, Any] | None
    search_attributes: dict[str, Any] | None
    header: dict[str, Payload] | None = None
    priority: dict[str, Any] | None = None

    event_type = EventType.START_CHILD_WORKFLOW_EXECUTION_INITIATED

    def attributes(self) -> dict[str, Any]:
        return _with_header(
            self.header,
            _with_flow(
                self.priority,
                None,
                {
                    "seq": self.seq,
                    "workflow_id": self.workflow_id,
                    "workflow_type": self.workflow_type,
                    "task_queue": self.task_queue,
                    "input": self.input,
                    "parent_close_policy": self.parent_close_policy,
                    "execution_timeout": self.execution_timeout,
                    "run_timeout": self.run_timeout,
                    "task_timeout": self.task_timeout,
                    "retry_policy": self.retry_policy,
                    "id_reuse_policy": self.id_reuse_policy,
                    "memo": self.memo,
                    "search_attributes": self.search_attributes,
                },
            ),
        )

    def describe(self) -> str:
        return f"StartChildWorkflow(seq={self.seq}, type={self.workflow_type!r})"


@dataclass(slots=True)
class SignalExternalWorkflow:
    seq: int
    workflow_id: str
    run_id: str | None
    signal_name: str
    input: list[Payload]
    header: dict[str, Payload] | None = None

    event_type = EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED

    def attributes(self) -> dict[str, Any]:
        return _with_header(
            self.header,
            {
                "seq": self.seq,
                "workflow_id": self.workflow_id,
                "run_id": self.run_id,
                "signal_name": self.signal_name,
                "input": self.input,
            },
        )

    def describe(self) -> str:
        return f"SignalExternalWorkflow(seq={self.seq}, {self.signal_name!r})"


@dataclass(slots=True)
class RequestCancelExternalWorkflow:
    seq: int
    workflow_id: str
    run_id: str | None

    event_type = EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED

    def attributes(self) -> dict[str, Any]:
        return {"seq": self.seq, "workflow_id": self.workflow_id, "run_id": self.run_id}

    def describe(self) -> str:
        return f"RequestCancelExternalWorkflow(seq={self.seq})"


@dataclass(slots=True)
class ScheduleLocalActivity:
    """Run an activity inside the workflow task (no task queue round trip); the worker runs
    it and the task records its outcome as a :class:`RecordLocalActivity` marker."""

    seq: int
    activity_id: str
    activity_type: str
    input: list[Payload]
    schedule_to_close_timeout: float | None
    start_to_close_timeout: float | None
    retry_policy: dict[str, Any]
    header: dict[str, Payload] | None = None  # for the activity's interceptors, not recorded

    event_type = None

    def attributes(self) -> dict[str, Any]:
        return {"seq": self.seq, "activity_type": self.activity_type}

    def describe(self) -> str:
        return f"ScheduleLocalActivity(seq={self.seq}, type={self.activity_type!r})"


@dataclass(slots=True)
class RecordLocalActivity:
    """A local activity's outcome, recorded as a marker where the code scheduled it."""

    seq: int
    activity_id: str
    activity_type: str
    attempt: int
    result: Payload | None
    failure: dict[str, Any] | None

    event_type = EventType.MARKER_RECORDED

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "marker_name": "local_activity",
            "seq": self.seq,
            "activity_id": self.activity_id,
            "activity_type": self.activity_type,
            "attempt": self.attempt,
        }
        if self.failure is not None:
            attrs["failure"] = self.failure
        else:
            attrs["result"] = self.result
        return attrs

    def describe(self) -> str:
        return f"RecordLocalActivity(seq={self.seq}, type={self.activity_type!r})"


Command = (
    ScheduleActivity
    | RequestCancelActivity
    | StartTimer
    | CancelTimer
    | CompleteWorkflow
    | FailWorkflow
    | CancelWorkflow
    | ContinueAsNew
    | RecordPatch
    | UpsertMemo
    | UpsertSearchAttributes
    | AcceptUpdate
    | RejectUpdate
    | CompleteUpdate
    | StartChildWorkflow
    | SignalExternalWorkflow
    | RequestCancelExternalWorkflow
    | ScheduleLocalActivity
    | RecordLocalActivity
)

CLOSE_COMMANDS = (CompleteWorkflow, FailWorkflow, CancelWorkflow, ContinueAsNew)
