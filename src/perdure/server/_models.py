"""The API's bodies as typed models: FastAPI validates requests with them and writes the
OpenAPI document from them, so the document and the checks cannot drift apart.

The response models describe the JSON shapes ``perdure._operate.shapes`` builds (the same
as ``perdure ... -o json``); the routes return those dicts as they are, and the test suite
checks every response against the document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal[
    "RUNNING", "COMPLETED", "FAILED", "CANCELED", "TERMINATED", "CONTINUED_AS_NEW", "TIMED_OUT"
]
ClosedStatus = Literal["COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"]
JSONArgs = list[Any]
# A duration in seconds, up to 100 years (beyond, the clock's arithmetic overflows).
MAX_SECONDS = 100 * 365 * 86400
Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]
# Event ids and counts fit a 64-bit column.
EventId = Annotated[int, Field(ge=1, le=2**62)]


class _Body(BaseModel):
    # A misspelled option is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")


# -- requests ---------------------------------------------------------------------------------
class RetryPolicyBody(_Body):
    """A workflow's retry policy (durations in seconds)."""

    initial_interval: Seconds = 1.0
    backoff_coefficient: float = Field(default=2.0, ge=1, le=100)
    maximum_interval: Seconds | None = None
    maximum_attempts: int = Field(default=0, ge=0, le=2**31, description="0: unlimited")
    non_retryable_error_types: list[str] | None = None


class PriorityBody(_Body):
    """The order of the workflow's tasks in their queue (Temporal's ``Priority``)."""

    priority_key: int | None = Field(
        default=None, ge=1, le=5, description="1 runs first, 5 last; none means 3."
    )
    fairness_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Tasks of different fairness keys share the queue (e.g. a tenant's id).",
    )
    fairness_weight: float | None = Field(
        default=None, ge=0.001, le=1000, description="This key's share against others' (1.0)."
    )


class StartWorkflowBody(_Body):
    """``POST /api/v1/workflows``: what ``client.start_workflow`` takes, by type name."""

    workflow_type: str = Field(min_length=1, max_length=1000)
    workflow_id: str | None = Field(
        default=None, min_length=1, max_length=1000, description="Default: a random UUID."
    )
    task_queue: str = Field(min_length=1, max_length=1000)
    args: JSONArgs = Field(default_factory=list, description="The arguments, as a JSON array.")
    execution_timeout: Seconds | None = None
    run_timeout: Seconds | None = None
    task_timeout: Seconds | None = None
    start_delay: Seconds | None = None
    id_reuse_policy: Literal[
        "ALLOW_DUPLICATE", "ALLOW_DUPLICATE_FAILED_ONLY", "REJECT_DUPLICATE", "TERMINATE_IF_RUNNING"
    ] = "ALLOW_DUPLICATE"
    id_conflict_policy: Literal["FAIL", "USE_EXISTING", "TERMINATE_EXISTING"] = "FAIL"
    retry_policy: RetryPolicyBody | None = None
    priority: PriorityBody | None = None
    memo: dict[str, Any] | None = None
    search_attributes: dict[str, Any] | None = Field(
        default=None,
        description="Typed by their JSON values: a string is a Keyword, an integer an Int, a "
        "number a Double, true/false a Bool, a list of strings a KeywordList.",
    )
    start_signal: str | None = Field(
        default=None, min_length=1, max_length=1000, description="Signal-with-start: this signal."
    )
    start_signal_args: JSONArgs = Field(default_factory=list)
    start_signal_request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="The start signal's idempotency key (see the signal route's request_id).",
    )


class ArgsBody(_Body):
    """A signal's arguments."""

    args: JSONArgs = Field(default_factory=list)


class SignalBody(ArgsBody):
    """A signal's arguments and its idempotency key."""

    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="The signal's idempotency key: a retried request with the key of one the "
        "workflow id took already (across continue-as-new too) is accepted and records "
        "nothing. Default: none (each request is a signal of its own).",
    )


class QueryBody(_Body):
    """A query's arguments, and how long to wait for a worker to answer."""

    args: JSONArgs = Field(default_factory=list)
    timeout: float = Field(default=30.0, gt=0, le=300)


class UpdateBody(_Body):
    """An update's arguments; ``update_id`` deduplicates it; how long to wait for its
    result."""

    args: JSONArgs = Field(default_factory=list)
    update_id: str | None = Field(default=None, min_length=1, max_length=1000)
    timeout: float = Field(default=60.0, gt=0, le=300)


class ReasonBody(_Body):
    """Why (recorded in history)."""

    reason: str = ""


class ResetBody(_Body):
    """Which workflow task runs again: ``event_id`` (a ``WorkflowTaskCompleted`` event), or
    ``reset_type`` (default ``LAST_WORKFLOW_TASK``)."""

    reason: str = Field(min_length=1)
    event_id: EventId | None = None
    reset_type: Literal["FIRST_WORKFLOW_TASK", "LAST_WORKFLOW_TASK", "LAST_CONTINUED_AS_NEW"] = (
        "LAST_WORKFLOW_TASK"
    )
    reapply_signals: bool = True


class TaskTokenBody(_Body):
    task_token: str = Field(
        min_length=1, description="The activity's task token (activity.info().task_token)."
    )


class ActivityCompleteBody(TaskTokenBody):
    result: Any = None


class ActivityFailure(_Body):
    """The failure an activity attempt ends with (an ``ApplicationError``)."""

    message: str
    type: str | None = None
    details: JSONArgs = Field(default_factory=list)
    non_retryable: bool = False


class ActivityFailBody(TaskTokenBody):
    failure: ActivityFailure


class ActivityHeartbeatBody(TaskTokenBody):
    details: JSONArgs = Field(default_factory=list)


# -- responses --------------------------------------------------------------------------------
class ParentRef(BaseModel):
    workflow_id: str
    run_id: str


class Workflow(BaseModel):
    """A workflow run, as ``perdure workflow list -o json`` prints it."""

    workflow_id: str
    run_id: str
    workflow_type: str
    status: Status
    task_queue: str
    start_time: datetime
    close_time: datetime | None
    history_length: int
    memo: dict[str, Any]
    search_attributes: dict[str, Any]
    parent: ParentRef | None


class Failure(BaseModel):
    """A failure chain, ``cause`` nested."""

    message: str
    type: str
    stack_trace: str
    cause: Failure | None


class PendingActivity(BaseModel):
    activity_id: str
    activity_type: str
    state: Literal["UNSPECIFIED", "SCHEDULED", "STARTED", "CANCEL_REQUESTED"]
    attempt: int
    maximum_attempts: int
    scheduled_time: datetime | None
    last_started_time: datetime | None
    last_heartbeat_time: datetime | None
    heartbeat_details: JSONArgs
    last_failure: Failure | None
    last_worker_identity: str
    next_attempt_schedule_time: datetime | None
    expiration_time: datetime | None


class PendingChild(BaseModel):
    workflow_id: str
    run_id: str
    workflow_type: str
    initiated_id: int
    parent_close_policy: str


class ResetInfo(BaseModel):
    base_run_id: str
    new_run_id: str
    event_id: int
    reason: str
    time: datetime


class WorkflowTaskFailure(BaseModel):
    message: str
    type: str
    stack_trace: str
    attempt: int
    time: datetime | None


class WorkflowDescription(Workflow):
    """``describe``: the workflow plus what it waits on, its resets and a failing task."""

    pending_activities: list[PendingActivity]
    pending_children: list[PendingChild]
    reset_from: ResetInfo | None
    reset_to: ResetInfo | None
    last_workflow_task_failure: WorkflowTaskFailure | None


class WorkflowPage(BaseModel):
    workflows: list[Workflow]
    next_page_token: str | None = Field(
        description="Pass it as next_page_token for the next page; null on the last."
    )


class WorkflowCountGroup(BaseModel):
    status: str = Field(description="RUNNING, COMPLETED, ...")
    count: int


class WorkflowCount(BaseModel):
    count: int = Field(description="With GROUP BY ExecutionStatus, the sum of the groups'.")
    groups: list[WorkflowCountGroup] | None = Field(
        None, description="With GROUP BY ExecutionStatus: each status that has runs."
    )
    capped: bool | None = Field(
        None,
        description="With max_count: true when a count stopped at max_count (there are at "
        "least that many).",
    )


class HistoryEvent(BaseModel):
    """An event in the history document's form: payloads encoded, time in epoch seconds."""

    event_id: int
    event_type: str
    event_time: float
    attributes: dict[str, Any]


class DecodedEvent(BaseModel):
    """An event for people: payloads decoded to their JSON values, time in RFC 3339."""

    event_id: int
    event_type: str
    event_time: datetime
    attributes: dict[str, Any]


class HistoryPage(BaseModel):
    """A page of a run's history: ``WorkflowHistory.to_json()``'s document (``format``,
    ``version``, encoded events), or with ``decode=true`` the events decoded (and no
    ``format``: that form is for reading, not for import)."""

    format: Literal["perdure.workflow-history"] | None = None
    version: int | None = None
    workflow_id: str
    run_id: str
    events: list[HistoryEvent] | list[DecodedEvent]
    next_page_token: str | None


class WorkflowOutcome(BaseModel):
    """How the run (followed through continue-as-new, retries and resets) ended, or
    ``RUNNING`` if it had not within ``wait``."""

    status: Status
    run_id: str
    result: Any = None
    failure: Failure | None = None


class Answer(BaseModel):
    """A query's answer or an update's result."""

    result: Any


class WorkflowRef(BaseModel):
    """The workflow acted on; for a reset, ``run_id`` is the new run."""

    workflow_id: str
    run_id: str | None


class HeartbeatAnswer(BaseModel):
    cancel_requested: bool


class Done(BaseModel):
    ok: bool


class SessionInfo(BaseModel):
    """Who is asking: how they authenticated, their role, and (for a cookie session) the
    value to send as ``X-Perdure-CSRF`` with state-changing requests."""

    auth: Literal["bearer", "cookie", "none"]
    role: Literal["read", "write"]
    csrf_token: str | None


class Health(BaseModel):
    status: Literal["ok"]


class Problem(BaseModel):
    """An RFC 9457 problem document; ``error`` names the Python exception."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    error: str | None = None
