"""Schedules, with Temporal's names: what a schedule is (``Schedule`` and its parts) and what
describing or listing one returns. The handle is in ``_schedule_handle``; the spec classes
(``ScheduleSpec``, ``ScheduleCalendarSpec``...) in ``perdure._common.schedule_spec``, since
the store computes times from them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from perdure._common.schedule_spec import ScheduleOverlapPolicy, ScheduleSpec
from perdure._store import Store
from perdure.common._priority import Priority
from perdure.common._retry import RetryPolicy
from perdure.common._search_attributes import TypedSearchAttributes
from perdure.converter import DataConverter
from perdure.workflow._definition import WorkflowDefinition

_ARG_UNSET: Any = object()


class ClientLike(Protocol):
    """What schedules need of a ``Client`` (so that this module need not import it)."""

    @property
    def namespace(self) -> str: ...

    @property
    def store(self) -> Store: ...

    @property
    def data_converter(self) -> DataConverter: ...

    async def _encode_memo(self, memo: dict[str, Any] | None) -> dict[str, Any] | None: ...

    @property
    def _outbound(self) -> Any: ...


class ScheduleAction:
    """What a schedule does at each time: :class:`ScheduleActionStartWorkflow`."""


class ScheduleActionStartWorkflow(ScheduleAction):
    """Start a workflow, with the options of ``Client.start_workflow``.

    The workflow id of each run is ``{id}-{nominal time}`` (``nightly-2026-03-07T07:30:00Z``,
    the slot's time in RFC 3339, UTC); each run carries the search attributes
    ``TemporalScheduledById`` (the schedule's id) and ``TemporalScheduledStartTime`` (the
    slot's time).

    As in Temporal, a described schedule's action holds its arguments and memo values as
    they are stored (``perdure.converter.Payload`` values), and passes them on unchanged
    when given to ``update``.

    Example::

        ScheduleActionStartWorkflow(Report.run, "daily", id="report", task_queue="reports")
    """

    def __init__(
        self,
        workflow: str | Callable[..., Any],
        arg: Any = _ARG_UNSET,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        retry_policy: RetryPolicy | None = None,
        memo: Mapping[str, Any] | None = None,
        typed_search_attributes: TypedSearchAttributes = TypedSearchAttributes.empty,
        priority: Priority | None = None,
    ) -> None:
        if not isinstance(workflow, str):
            workflow = WorkflowDefinition.from_run_fn(workflow).name
        if arg is not _ARG_UNSET:
            if args:
                raise ValueError("Give either arg or args, not both")
            args = (arg,)
        self.workflow: str = workflow
        self.args: Sequence[Any] = list(args)
        self.id = id
        self.task_queue = task_queue
        self.execution_timeout = execution_timeout
        self.run_timeout = run_timeout
        self.task_timeout = task_timeout
        self.retry_policy = retry_policy
        self.memo = memo
        self.typed_search_attributes = typed_search_attributes
        self.priority = priority

    def __repr__(self) -> str:
        return (
            f"ScheduleActionStartWorkflow({self.workflow!r}, id={self.id!r}, "
            f"task_queue={self.task_queue!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScheduleActionStartWorkflow) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class SchedulePolicy:
    """How a schedule acts.

    Attributes:
        overlap: what to do when an action is due while the workflow it started last is
            still running.
        catchup_window: how late a missed action may still run, after a time no worker was
            running (slots further back are counted in ``num_actions_missed_catchup_window``).
        pause_on_failure: pause the schedule when a workflow it started fails or times out
            (after its retries).
    """

    overlap: ScheduleOverlapPolicy = ScheduleOverlapPolicy.SKIP
    catchup_window: timedelta = timedelta(days=365)
    pause_on_failure: bool = False


@dataclass
class ScheduleState:
    """A schedule's state.

    Attributes:
        note: why it is as it is (set by pause and unpause, and by a pause on failure).
        paused: takes no scheduled actions (``trigger`` and ``backfill`` still act).
        limited_actions: counts ``remaining_actions`` down (True exactly when it is not 0).
        remaining_actions: scheduled actions left; at 0 only ``trigger`` and ``backfill`` act.
    """

    note: str | None = None
    paused: bool = False
    limited_actions: bool = False
    remaining_actions: int = 0


@dataclass
class Schedule:
    """A schedule: its action, when it happens, and how.

    Example::

        Schedule(
            action=ScheduleActionStartWorkflow(Report.run, id="report", task_queue="reports"),
            spec=ScheduleSpec(cron_expressions=["30 2 * * *"], time_zone_name="Europe/Paris"),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE),
        )
    """

    action: ScheduleAction
    spec: ScheduleSpec
    policy: SchedulePolicy = field(default_factory=SchedulePolicy)
    state: ScheduleState = field(default_factory=ScheduleState)


@dataclass
class ScheduleBackfill:
    """A past period whose actions are taken now, as if it were passing: the slots from
    ``start_at`` to ``end_at`` (both included), under ``overlap`` (None: the schedule's)."""

    start_at: datetime
    end_at: datetime
    overlap: ScheduleOverlapPolicy | None = None


class ScheduleActionExecution:
    """What an action of a schedule started: :class:`ScheduleActionExecutionStartWorkflow`."""


@dataclass
class ScheduleActionExecutionStartWorkflow(ScheduleActionExecution):
    """A workflow a schedule started (the run it started first)."""

    workflow_id: str
    first_execution_run_id: str


@dataclass
class ScheduleActionResult:
    """One action taken: its slot's time (``scheduled_at``, jitter included), when it was
    taken, and what it started."""

    scheduled_at: datetime
    started_at: datetime
    action: ScheduleActionExecution


@dataclass
class ScheduleInfo:
    """What a schedule has done and will do.

    Attributes:
        num_actions: actions taken (scheduled, triggered and backfilled).
        num_actions_missed_catchup_window: slots not taken because they were further back
            than the catch-up window when the schedule next fired.
        num_actions_skipped_overlap: slots skipped by the overlap policy.
        running_actions: the workflows it started that still run (not those of ALLOW_ALL).
        recent_actions: the last 10 actions, oldest first.
        next_action_times: the next 10 action times (jitter included), at most as many as
            remaining actions.
        created_at: when it was created.
        last_updated_at: when ``update`` last changed it (None: never).
    """

    num_actions: int
    num_actions_missed_catchup_window: int
    num_actions_skipped_overlap: int
    running_actions: Sequence[ScheduleActionExecution]
    recent_actions: Sequence[ScheduleActionResult]
    next_action_times: Sequence[datetime]
    created_at: datetime
    last_updated_at: datetime | None


@dataclass
class ScheduleDescription:
    """What ``ScheduleHandle.describe()`` returns: the schedule as stored (cron expressions
    as calendars) and what it did."""

    id: str
    schedule: Schedule
    info: ScheduleInfo
    typed_search_attributes: TypedSearchAttributes
    data_converter: DataConverter
    raw_memo: Mapping[str, Any] | None = None

    async def memo(self) -> Mapping[str, Any]:
        """The schedule's memo (given to ``create_schedule``), decoded."""
        return await _decode_memo(self.data_converter, self.raw_memo)

    async def memo_value(self, key: str, default: Any = _ARG_UNSET) -> Any:
        """One memo value, or ``default`` (KeyError if absent and no default)."""
        memo = await self.memo()
        if key in memo:
            return memo[key]
        if default is _ARG_UNSET:
            raise KeyError(key)
        return default


@dataclass
class ScheduleUpdateInput:
    """What an update callback of ``ScheduleHandle.update`` is given."""

    description: ScheduleDescription


@dataclass
class ScheduleUpdate:
    """What an update callback returns: the schedule to store, and search attributes to
    set instead of the schedule's (None: keep them)."""

    schedule: Schedule
    search_attributes: TypedSearchAttributes | None = None


class ScheduleListAction:
    """A listed schedule's action: :class:`ScheduleListActionStartWorkflow`."""


@dataclass
class ScheduleListActionStartWorkflow(ScheduleListAction):
    workflow: str


@dataclass
class ScheduleListState:
    note: str | None
    paused: bool


@dataclass
class ScheduleListSchedule:
    action: ScheduleListAction
    spec: ScheduleSpec
    state: ScheduleListState


@dataclass
class ScheduleListInfo:
    recent_actions: Sequence[ScheduleActionResult]
    next_action_times: Sequence[datetime]


@dataclass
class ScheduleListDescription:
    """One schedule, as ``Client.list_schedules`` gives it."""

    id: str
    schedule: ScheduleListSchedule | None
    info: ScheduleListInfo | None
    typed_search_attributes: TypedSearchAttributes
    data_converter: DataConverter
    raw_memo: Mapping[str, Any] | None = None

    async def memo(self) -> Mapping[str, Any]:
        return await _decode_memo(self.data_converter, self.raw_memo)


async def _decode_memo(converter: DataConverter, memo: Mapping[str, Any] | None) -> dict[str, Any]:
    if not memo:
        return {}
    keys = list(memo)
    values = await converter.decode([memo[k] for k in keys])
    return dict(zip(keys, values, strict=True))
