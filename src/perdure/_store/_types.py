"""Rows and requests the store trades in. Plain data; no SQL, no user code."""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass, field
from typing import Any

import orjson

from perdure._common.events import HistoryEvent
from perdure._common.payload import Payload
from perdure._common.status import PendingActivityState, WorkflowExecutionStatus
from perdure._errors import PerdureError
from perdure.common._enums import ResetType, WorkflowIDConflictPolicy, WorkflowIDReusePolicy


class TaskKind(enum.IntEnum):
    WORKFLOW = 1
    ACTIVITY = 2
    QUERY = 3


class WftState(enum.IntEnum):
    """Whether the execution has a workflow task, and whether a worker holds it."""

    NONE = 0
    SCHEDULED = 1
    STARTED = 2


# The failure kinds recorded when a workflow task runs again through no fault of its code:
# its lease ran out (its worker was lost or blocked), or its worker could not record it.
LEASE_RAN_OUT = "timeout"
NOT_RECORDED = "worker"
WORKER_RERUN_KINDS = frozenset({LEASE_RAN_OUT, NOT_RECORDED})


class UpdateState(enum.IntEnum):
    REQUESTED = 0
    ACCEPTED = 1
    COMPLETED = 2
    REJECTED = 3


@dataclass(slots=True)
class UpdateRow:
    run_id: str
    update_id: str
    name: str
    input: list[Payload]
    state: UpdateState
    outcome: dict[str, Any] | None
    header: dict[str, Payload] | None = None  # interceptors' headers


class StaleTaskError(PerdureError):
    """The task was settled, re-leased or timed out since this worker took it (fencing)."""


@dataclass(slots=True)
class Execution:
    """One run of a workflow, as the executions table holds it."""

    run_id: str
    namespace: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    next_event_id: int
    start_time: float
    task_timeout: float
    history_size: int = 0
    close_time: float | None = None
    wft_state: WftState = WftState.NONE
    wft_attempt: int = 0
    cancel_requested: bool = False
    last_failure: dict[str, Any] | None = None
    close_event: dict[str, Any] | None = None
    memo: dict[str, Any] | None = None
    attempt: int = 1
    execution_deadline: float | None = None
    run_timeout: float | None = None
    retry_policy: dict[str, Any] | None = None
    first_run_id: str = ""
    search_attributes: dict[str, Any] | None = None
    parent: dict[str, Any] | None = None
    # Whether an update was ever requested of this run: if not, nothing needs to look for
    # one (most runs never get one).
    updates_requested: bool = False
    # Resets this run took part in: "from" (it was made by resetting another run) and "to"
    # (it was reset, or ended by a reset, into another), each a ``ResetPoint.to_dict()``.
    reset_points: dict[str, Any] | None = None
    # Temporal's Priority as a dict (priority_key, fairness_key, fairness_weight), or None.
    priority: dict[str, Any] | None = None
    # Whether inputs (signals, cancel requests, children's outcomes) wait in the inbox,
    # delivered while a workflow task ran: a task's completion looks there only if so. Ask
    # ``Tx.inputs_buffered``, which also knows of inputs this transaction buffered through
    # another object of the run.
    inputs_buffered: bool = False
    # Whether this run ever started a child: if not, its close has no children to apply its
    # close policy to, and describe none to list (most runs start none). Never cleared.
    children_started: bool = False

    @property
    def is_open(self) -> bool:
        return self.status == WorkflowExecutionStatus.RUNNING

    @property
    def code_failing(self) -> bool:
        """Its workflow task is being retried because the workflow's code failed (not
        because the worker holding it was lost or could not record it)."""
        failure = self.last_failure or {}
        return self.wft_attempt > 1 and failure.get("kind") not in WORKER_RERUN_KINDS


@dataclass(slots=True)
class NamespaceRow:
    """A namespace's data lifecycle settings, as the namespaces table holds them."""

    name: str
    retention: float | None = None  # seconds closed runs are kept; None: forever
    archive_uri: str | None = None  # where histories are archived before deletion


@dataclass(slots=True)
class TaskRow:
    """A unit of work in a task queue (workflow task, activity attempt, or query)."""

    task_id: int
    kind: TaskKind
    namespace: str
    task_queue: str
    run_id: str
    workflow_id: str
    ref: int
    visible_at: float
    lease_seconds: float
    attempt: int = 1
    lease_owner: str | None = None
    lease_expires: float | None = None
    deadline: float | None = None
    final_deadline: float | None = None
    heartbeat_timeout: float | None = None
    started_at: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # Flow control (see _store/_flow.py): claimed by (priority_key, fair_pass) first.
    priority_key: int = 3
    fair_pass: float = 0.0
    concurrency_key: str | None = None
    # Set only on a task about to be inserted: the fairness key its pass is taken for.
    fairness: tuple[str, float] | None = None


def claim_order(task: TaskRow) -> tuple[int, float, float, int]:
    """The order a queue's tasks are claimed in (the tasks_ready index's)."""
    return (task.priority_key, task.fair_pass, task.visible_at, task.task_id)


@dataclass(frozen=True, slots=True)
class ClaimLimits:
    """What a worker's activity claims must respect beyond its free slots (see _flow)."""

    queue_rate: float | None = None  # max_task_queue_activities_per_second
    per_key: int | None = None  # max_concurrent_activities_per_key


@dataclass(slots=True)
class PendingActivity:
    """An activity an open run waits on, as its task row holds it (times in epoch seconds)."""

    activity_id: str
    activity_type: str
    state: PendingActivityState
    heartbeat_details: list[Payload]
    last_heartbeat_time: float | None
    last_started_time: float | None
    attempt: int
    maximum_attempts: int
    scheduled_time: float
    expiration_time: float | None
    last_failure: dict[str, Any] | None
    # The lease owner of the running (or last failed) attempt: "{worker identity}/{id}".
    last_lease_owner: str | None
    next_attempt_schedule_time: float | None


@dataclass(slots=True)
class PendingChild:
    """A child workflow an open run has started and that has not closed yet."""

    workflow_id: str
    run_id: str
    workflow_type: str
    initiated_event_id: int
    parent_close_policy: int


@dataclass(slots=True)
class PendingWork:
    """What an open run waits on: activities (by sequence number) and children."""

    activities: list[PendingActivity]
    children: list[PendingChild]


@dataclass(slots=True)
class StartWorkflowRequest:
    namespace: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    input: list[Payload]
    run_id: str
    task_timeout: float = 10.0
    execution_timeout: float | None = None
    run_timeout: float | None = None
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE
    id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL
    memo: dict[str, Any] | None = None
    identity: str = ""
    start_delay: float = 0.0
    retry_policy: dict[str, Any] | None = None
    start_signal: str | None = None
    start_signal_input: list[Payload] = field(default_factory=list)
    # The start signal's idempotency key (see _executions.signal).
    start_signal_request_id: str | None = None
    search_attributes: dict[str, Any] | None = None
    parent: dict[str, Any] | None = None
    # Interceptors' headers, recorded on the start event (and a start signal's).
    header: dict[str, Payload] | None = None
    priority: dict[str, Any] | None = None


@dataclass(slots=True)
class ResetRequest:
    """Reset a run to one of its workflow tasks (``event_id``, a ``WorkflowTaskCompleted``
    event of it, or else the task ``reset_type`` names)."""

    namespace: str
    workflow_id: str
    run_id: str | None
    reason: str
    event_id: int | None = None
    reset_type: ResetType = ResetType.LAST_WORKFLOW_TASK
    reapply_signals: bool = True
    identity: str = ""


@dataclass(slots=True)
class StartResult:
    run_id: str
    started: bool


@dataclass(slots=True)
class WorkflowTask:
    """A workflow task a worker holds: the run, and the fencing values to complete it."""

    task_id: int
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    attempt: int
    started_time: float
    next_event_id: int
    history_size: int
    owner: str
    lease_seconds: float = 10.0
    # False when no update had been requested of the run as the task was claimed: the worker
    # need not look for any (one requested since gets a task of its own).
    updates_requested: bool = True
    # Handed over eagerly: the events its transaction appended, the newest of the history
    # (the worker reads history only before the first of them).
    new_events: list[HistoryEvent] | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class TaskToken:
    """Identifies one activity attempt; stale attempts are refused with it."""

    namespace: str
    workflow_id: str
    run_id: str
    seq: int
    attempt: int

    def encode(self) -> bytes:
        return base64.urlsafe_b64encode(
            orjson.dumps([self.namespace, self.workflow_id, self.run_id, self.seq, self.attempt])
        )

    @staticmethod
    def decode(token: bytes) -> TaskToken:
        try:
            ns, wf_id, run_id, seq, attempt = orjson.loads(base64.urlsafe_b64decode(token))
            return TaskToken(ns, wf_id, run_id, int(seq), int(attempt))
        except Exception as exc:
            raise ValueError(f"Not a perdure activity task token: {token!r}") from exc


@dataclass(slots=True)
class ActivityTask:
    """An activity attempt a worker holds."""

    token: TaskToken
    task_queue: str
    workflow_type: str
    activity_id: str
    activity_type: str
    input: list[Payload]
    attempt: int
    scheduled_time: float
    started_time: float
    start_to_close_timeout: float | None
    schedule_to_close_timeout: float | None
    heartbeat_timeout: float | None
    heartbeat_details: list[Payload]
    owner: str
    header: dict[str, Payload] = field(default_factory=dict)
    priority: dict[str, Any] | None = None


@dataclass(slots=True)
class QueryTask:
    query_id: int
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    query_type: str
    args: list[Payload]
    owner: str
    header: dict[str, Payload] = field(default_factory=dict)
    # The run's next event id when the query was sent: its answer must reflect the events
    # before it (an instance cached by a worker that did not run the later tasks has not).
    next_event_id: int = 1


@dataclass(slots=True)
class QueryResult:
    ok: bool
    result: Payload | None
    error: str | None


__all__ = [
    "ActivityTask",
    "ClaimLimits",
    "Execution",
    "PendingActivity",
    "PendingChild",
    "PendingWork",
    "QueryResult",
    "QueryTask",
    "ResetRequest",
    "StaleTaskError",
    "StartResult",
    "StartWorkflowRequest",
    "TaskKind",
    "TaskRow",
    "TaskToken",
    "WftState",
    "WorkflowExecutionStatus",
    "WorkflowTask",
]
