"""What ``describe()`` shows: the run (``WorkflowExecutionDescription``, read by
``describe_run``), the work an open workflow waits on (its pending activities and children,
under the names of Temporal's ``PendingActivityInfo`` and ``PendingChildExecutionInfo``) and
the resets a run took part in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from perdure._common.status import PendingActivityState, WorkflowExecutionStatus
from perdure._errors import FailureError
from perdure._store._types import PendingActivity, PendingChild, PendingWork
from perdure.client._connection import Connection
from perdure.common._search_attributes import TypedSearchAttributes, decode_pairs
from perdure.workflow._info import ParentClosePolicy


@dataclass(frozen=True)
class ActivityType:
    """An activity's type, as Temporal nests it (``info.activity_type.name``)."""

    name: str


@dataclass(frozen=True)
class PendingActivityInfo:
    """An activity the workflow has scheduled and that has not finished.

    Attributes:
        activity_id: the id the workflow gave it.
        activity_type: its type; ``activity_type.name`` is the registered name.
        state: ``SCHEDULED`` (waiting for a worker, or for its next retry), ``STARTED``
            (a worker runs it) or ``CANCEL_REQUESTED``.
        heartbeat_details: the details of its last heartbeat, decoded (kept across retries).
        last_heartbeat_time: when it last heartbeated, if ever.
        last_started_time: when the current attempt (or, while a retry waits, the failed
            one) started.
        attempt: the current attempt, from 1.
        maximum_attempts: the retry policy's limit (0: unlimited).
        scheduled_time: when the current attempt was (or, backing off, will be) scheduled.
        expiration_time: its schedule-to-close deadline, if it has one.
        last_failure: why the previous attempt failed, once one has.
        last_worker_identity: the identity of the worker running it (or that ran the failed
            attempt); empty if none has.
        next_attempt_schedule_time: while it waits to be retried, when the retry is due.
    """

    activity_id: str
    activity_type: ActivityType
    state: PendingActivityState
    heartbeat_details: Sequence[Any]
    last_heartbeat_time: datetime | None
    last_started_time: datetime | None
    attempt: int
    maximum_attempts: int
    scheduled_time: datetime
    expiration_time: datetime | None
    last_failure: FailureError | None
    last_worker_identity: str
    next_attempt_schedule_time: datetime | None


@dataclass(frozen=True)
class PendingChildInfo:
    """A child workflow the workflow has started and that has not closed.

    Attributes:
        workflow_id: the child's workflow id.
        run_id: its current run.
        workflow_type_name: its workflow type.
        initiated_id: the id of the parent's event that started it
            (``StartChildWorkflowExecutionInitiated``).
        parent_close_policy: what happens to it when the parent closes.
    """

    workflow_id: str
    run_id: str
    workflow_type_name: str
    initiated_id: int
    parent_close_policy: ParentClosePolicy


@dataclass(frozen=True)
class WorkflowExecutionRawDescription:
    """``describe().raw_description``: where Temporal's describe response keeps the pending
    lists, so ``desc.raw_description.pending_activities`` reads the same on perdure."""

    pending_activities: Sequence[PendingActivityInfo] = ()
    pending_children: Sequence[PendingChildInfo] = ()


def _utc(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _identity(lease_owner: str | None) -> str:
    # A worker leases tasks as "{identity}/{worker instance}" (Worker._owner).
    return (lease_owner or "").rpartition("/")[0] or (lease_owner or "")


async def _activity_info(client: Connection, act: PendingActivity) -> PendingActivityInfo:
    conv = client.data_converter
    last_failure = None
    if act.last_failure is not None:
        failure = await client.decode_failure(act.last_failure)
        last_failure = conv.failure_converter.from_failure(failure, conv.payload_converter)
    return PendingActivityInfo(
        activity_id=act.activity_id,
        activity_type=ActivityType(act.activity_type),
        state=act.state,
        heartbeat_details=tuple(await conv.decode(act.heartbeat_details)),
        last_heartbeat_time=_utc(act.last_heartbeat_time),
        last_started_time=_utc(act.last_started_time),
        attempt=act.attempt,
        maximum_attempts=act.maximum_attempts,
        scheduled_time=datetime.fromtimestamp(act.scheduled_time, UTC),
        expiration_time=_utc(act.expiration_time),
        last_failure=last_failure,
        last_worker_identity=_identity(act.last_lease_owner),
        next_attempt_schedule_time=_utc(act.next_attempt_schedule_time),
    )


def _child_info(child: PendingChild) -> PendingChildInfo:
    return PendingChildInfo(
        workflow_id=child.workflow_id,
        run_id=child.run_id,
        workflow_type_name=child.workflow_type,
        initiated_id=child.initiated_event_id,
        parent_close_policy=ParentClosePolicy(child.parent_close_policy),
    )


async def pending_infos(
    client: Connection, work: PendingWork
) -> tuple[tuple[PendingActivityInfo, ...], tuple[PendingChildInfo, ...]]:
    """What a run waits on, decoded with the client's data converter."""
    activities = tuple([await _activity_info(client, act) for act in work.activities])
    return activities, tuple(_child_info(child) for child in work.children)


@dataclass(frozen=True)
class WorkflowResetInfo:
    """A reset this run took part in: ``describe().reset_from`` (the run was made by a reset)
    or ``describe().reset_to`` (the run was reset, or ended by a reset, into another)."""

    base_run_id: str
    """The run that was reset."""
    new_run_id: str
    """The run the reset made."""
    event_id: int
    """The base run's ``WorkflowTaskCompleted`` event whose workflow task ran again."""
    reason: str
    time: datetime

    @staticmethod
    def _from_dict(info: dict[str, Any] | None) -> WorkflowResetInfo | None:
        if not info:
            return None
        return WorkflowResetInfo(
            base_run_id=info["base_run_id"],
            new_run_id=info["new_run_id"],
            event_id=info["event_id"],
            reason=info.get("reason", ""),
            time=datetime.fromtimestamp(info["time"], UTC),
        )


@dataclass(frozen=True)
class WorkflowTaskFailureInfo:
    """Why the workflow's current task keeps failing (the workflow itself stays open)."""

    message: str
    type: str
    stack_trace: str
    attempt: int
    time: datetime


@dataclass(frozen=True)
class WorkflowExecutionDescription:
    """What ``WorkflowHandle.describe()`` returns.

    ``pending_activities`` and ``pending_children`` list what an open run waits on (empty
    once it has closed); ``raw_description`` holds the same lists, where Temporal's
    describe response keeps them.
    """

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    namespace: str
    status: WorkflowExecutionStatus
    start_time: datetime
    close_time: datetime | None
    history_length: int
    history_size: int
    memo: dict[str, Any]
    last_workflow_task_failure: WorkflowTaskFailureInfo | None
    workflow_task_attempt: int
    attempt: int = 1
    first_execution_run_id: str = ""
    typed_search_attributes: TypedSearchAttributes = field(default_factory=TypedSearchAttributes)
    parent_id: str | None = None
    parent_run_id: str | None = None
    pending_activities: Sequence[PendingActivityInfo] = ()
    pending_children: Sequence[PendingChildInfo] = ()
    reset_from: WorkflowResetInfo | None = None
    """The reset that made this run, if one did."""
    reset_to: WorkflowResetInfo | None = None
    """The latest reset that went back into this run's history (or ended it), if any."""

    @property
    def raw_description(self) -> WorkflowExecutionRawDescription:
        """The pending lists, as ``desc.raw_description.pending_activities`` reads them on
        Temporal."""
        return WorkflowExecutionRawDescription(self.pending_activities, self.pending_children)


def _when(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


async def describe_run(
    conn: Connection, workflow_id: str, run_id: str | None
) -> WorkflowExecutionDescription:
    """What ``WorkflowHandle.describe()`` returns, read and decoded."""
    ex, work = await conn.store.describe_pending(conn.namespace, workflow_id, run_id)
    failure = None
    if ex.last_failure is not None and ex.is_open:
        lf = ex.last_failure
        # Its message and stack trace may be encoded (a failure converter with encoded
        # attributes): read them back as the worker wrote them.
        decoded = await conn.data_converter.decode_failure(lf)
        failure = WorkflowTaskFailureInfo(
            message=decoded.message,
            type=lf.get("type", ""),
            stack_trace=(decoded.failure or {}).get("stack_trace", ""),
            attempt=lf.get("attempt", 0),
            time=_when(lf.get("time", 0.0)),
        )
    activities, children = await pending_infos(conn, work)
    return WorkflowExecutionDescription(
        id=ex.workflow_id,
        run_id=ex.run_id,
        workflow_type=ex.workflow_type,
        task_queue=ex.task_queue,
        namespace=ex.namespace,
        status=ex.status,
        start_time=_when(ex.start_time),
        close_time=_utc(ex.close_time),
        history_length=ex.next_event_id - 1,
        history_size=ex.history_size,
        memo=await conn.decode_memo(ex.memo),
        last_workflow_task_failure=failure,
        workflow_task_attempt=ex.wft_attempt,
        attempt=ex.attempt,
        first_execution_run_id=ex.first_run_id,
        typed_search_attributes=decode_pairs(ex.search_attributes),
        parent_id=ex.parent["workflow_id"] if ex.parent else None,
        parent_run_id=ex.parent["run_id"] if ex.parent else None,
        pending_activities=activities,
        pending_children=children,
        reset_from=WorkflowResetInfo._from_dict((ex.reset_points or {}).get("from")),
        reset_to=WorkflowResetInfo._from_dict((ex.reset_points or {}).get("to")),
    )
