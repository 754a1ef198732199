"""Fan-out over more items than one history should hold: a tree of ``FanOutBatch`` child
workflows, each leaf running an activity over one batch of the items.

Each item adds about 3 events to the history of the workflow that schedules its activity,
and each child about 3 to its parent's. So a leaf holds at most ``batch_size`` items and a
node at most ``max_children`` children; past that the tree grows a level (1,000,000 items in
batches of 1,000 with 100 children a node: 10 children of 100 batches each). Any run that
still grows long (perdure suggests continuing as new past 4,096 events, or
``continue_as_new_after``) stops starting work, lets what is running finish, and continues
as new with the items it has not started and the counts so far.

Only index ranges travel: a child's input is its ``range`` of items, never the items, so the
payloads stay small however large the input; the activity receives an item of the range and
loads what it stands for. Results are not collected (they would grow every history on the
way up): the activity stores its output, and the tree reports counts and failures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, cast

from perdure._errors import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
)
from perdure.activity._definition import ActivityDefinition
from perdure.common import RetryPolicy
from perdure.patterns._fan_out import (
    DEFAULT_MAX_CONCURRENCY,
    ItemOutcome,
    ItemStatus,
    run_bounded,
)
from perdure.workflow import (
    continue_as_new,
    defn,
    execute_activity,
    execute_child_workflow,
    info,
    run,
)


@dataclass(frozen=True)
class ItemFailure:
    """One item that failed in :func:`map_activity_in_batches`.

    Attributes:
        item: the item (a value of the input range) that the activity was given.
        type: the error's type: ``ApplicationError.type``, or the error class name.
        message: the error's message (for an item of a batch that failed as a whole, what
            ended that batch).
    """

    item: int
    type: str
    message: str


@dataclass(frozen=True)
class FanOutSummary:
    """What :func:`map_activity_in_batches` did: counts, the first failures, the tree's size.

    Attributes:
        total: the items.
        succeeded: items whose activity completed.
        failed: items whose activity failed (after its retries), or whose batch failed as a
            whole (terminated, timed out).
        not_run: items ``fail_fast`` stopped: never started, or in a batch it cancelled.
        failures: the first ``max_failures`` failed items, in input order.
        failures_omitted: failed items beyond those.
        workflow_runs: ``FanOutBatch`` runs in the tree (children, and the runs they continued
            as new into).
        max_history_length: the longest history, in events, of any of those runs.
    """

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    not_run: int = 0
    failures: list[ItemFailure] = field(default_factory=list)
    failures_omitted: int = 0
    workflow_runs: int = 0
    max_history_length: int = 0

    @property
    def ok(self) -> bool:
        """Whether every item completed."""
        return self.succeeded == self.total


@dataclass(frozen=True)
class BatchJob:
    """A ``FanOutBatch`` run's input: the items it covers, as a range, and how to run them."""

    activity: str
    args: list[Any]
    start: int
    stop: int
    step: int
    offset: int  # the position of ``start`` in the whole input, for child ids
    id_prefix: str
    batch_size: int
    max_children: int
    max_concurrency: int
    max_concurrent_children: int
    fail_fast: bool
    max_failures: int
    continue_as_new_after: int | None
    task_queue: str | None
    start_to_close_timeout: float | None
    schedule_to_close_timeout: float | None
    schedule_to_start_timeout: float | None
    heartbeat_timeout: float | None
    retry_policy: dict[str, Any] | None
    carried: FanOutSummary | None = None  # the counts of the runs this one continued from

    @property
    def items(self) -> range:
        return range(self.start, self.stop, self.step)


class _BatchReportedFailures(ApplicationError):
    """A child batch completed with failures while ``fail_fast``: stop its siblings."""

    def __init__(self, summary: FanOutSummary) -> None:
        super().__init__("a batch reported failed items", type="FanOutBatchFailed")
        self.summary = summary


@defn
class FanOutBatch:
    """The child workflow :func:`map_activity_in_batches` starts: one node of its tree.

    Register it on the worker that runs the workflow calling the helper:
    ``Worker(..., workflows=[MyWorkflow, FanOutBatch])``. A node whose range is at most
    ``batch_size`` items runs the activity over them; a larger one splits its range among
    child ``FanOutBatch`` runs.
    """

    @run
    async def run(self, job: BatchJob) -> FanOutSummary:
        items = job.items
        if len(items) <= job.batch_size:
            summary, rest = await _run_leaf(job, items)
        else:
            summary, rest = await _run_children(job, items, keep_starting=_room_left(job))
        summary = _merge(job.carried or FanOutSummary(), summary, job.max_failures)
        summary = replace(
            summary,
            workflow_runs=summary.workflow_runs + 1,
            # + 1: the event that closes this run, written after this code returns.
            max_history_length=max(
                summary.max_history_length, info().get_current_history_length() + 1
            ),
        )
        if rest is None:
            return summary
        rest_items, rest_offset = rest
        continue_as_new(
            replace(
                job,
                start=rest_items.start,
                stop=rest_items.stop,
                step=rest_items.step,
                offset=rest_offset,
                carried=summary,
            )
        )


def _room_left(job: BatchJob) -> Callable[[], bool]:
    """Whether this run may start more work, or should drain and continue as new."""
    first_length = info().get_current_history_length()

    def room_left() -> bool:
        here = info()
        length = here.get_current_history_length()
        if length <= first_length:  # nothing started yet: always make progress
            return True
        if here.is_continue_as_new_suggested():
            return False
        limit = job.continue_as_new_after
        return limit is None or length < limit

    return room_left


# A run ends with its summary and, if it stopped to continue as new, the items it did not
# start and their position in the whole input.
_RunOutcome = tuple[FanOutSummary, tuple[range, int] | None]


async def _run_leaf(job: BatchJob, items: range) -> _RunOutcome:
    policy = RetryPolicy.from_dict(job.retry_policy) if job.retry_policy else None

    async def run_item(index: int) -> None:
        await execute_activity(
            job.activity,
            args=[*job.args, items[index]],
            task_queue=job.task_queue,
            start_to_close_timeout=_delta(job.start_to_close_timeout),
            schedule_to_close_timeout=_delta(job.schedule_to_close_timeout),
            schedule_to_start_timeout=_delta(job.schedule_to_start_timeout),
            heartbeat_timeout=_delta(job.heartbeat_timeout),
            retry_policy=policy,
        )

    outcomes = await run_bounded(
        len(items),
        run_item,
        max_concurrency=job.max_concurrency,
        fail_fast=job.fail_fast,
        keep_starting=_room_left(job),
    )
    stopped = job.fail_fast and any(o.status is ItemStatus.FAILED for o in outcomes)
    failures: list[ItemFailure] = []
    counts = {status: 0 for status in ItemStatus}
    for o in outcomes:
        counts[o.status] += 1
        if o.status is ItemStatus.FAILED and len(failures) < job.max_failures:
            failures.append(_item_failure(items[o.index], o.error, ""))
    started = len(items) - counts[ItemStatus.NOT_STARTED]
    summary = FanOutSummary(
        total=started if not stopped else len(items),
        succeeded=counts[ItemStatus.COMPLETED],
        failed=counts[ItemStatus.FAILED],
        not_run=(counts[ItemStatus.CANCELLED] + counts[ItemStatus.NOT_STARTED]) if stopped else 0,
        failures=failures,
        failures_omitted=counts[ItemStatus.FAILED] - len(failures),
    )
    if stopped or started == len(items):
        return summary, None
    return summary, (items[started:], job.offset + started)


async def _run_children(
    job: BatchJob, items: range, *, keep_starting: Callable[[], bool] | None
) -> _RunOutcome:
    span = _span(len(items), job.batch_size, job.max_children)
    chunks = [(lo, min(lo + span, len(items))) for lo in range(0, len(items), span)]

    def child_id(lo: int, hi: int) -> str:
        return f"{job.id_prefix}/{job.offset + lo}-{job.offset + hi}"

    async def run_chunk(index: int) -> FanOutSummary:
        lo, hi = chunks[index]
        part = items[lo:hi]
        child = replace(
            job,
            start=part.start,
            stop=part.stop,
            step=part.step,
            offset=job.offset + lo,
            carried=None,
        )
        summary: FanOutSummary = await execute_child_workflow(
            FanOutBatch.run, child, id=child_id(lo, hi), task_queue=job.task_queue
        )
        if job.fail_fast and summary.failed:
            raise _BatchReportedFailures(summary)
        return summary

    outcomes = await run_bounded(
        len(chunks),
        run_chunk,
        max_concurrency=job.max_concurrent_children,
        fail_fast=job.fail_fast,
        keep_starting=keep_starting,
    )
    stopped = job.fail_fast and any(o.status is ItemStatus.FAILED for o in outcomes)
    summary = FanOutSummary()
    rest: tuple[range, int] | None = None
    for o in outcomes:
        lo, hi = chunks[o.index]
        part = items[lo:hi]
        summary = _merge(
            summary, _chunk_summary(o, part, child_id(lo, hi), stopped, job), job.max_failures
        )
        if o.status is ItemStatus.NOT_STARTED and not stopped and rest is None:
            rest = (items[lo:], job.offset + lo)
    return summary, rest


def _chunk_summary(
    outcome: ItemOutcome[FanOutSummary], part: range, child_id: str, stopped: bool, job: BatchJob
) -> FanOutSummary:
    """What one child batch contributes to its parent's summary."""
    if outcome.status is ItemStatus.COMPLETED:
        return cast(FanOutSummary, outcome.value)
    err = outcome.error
    if isinstance(err, _BatchReportedFailures):
        return err.summary
    if outcome.status is ItemStatus.FAILED:
        # The batch failed as a whole (terminated, timed out, its id taken): its items with it.
        prefix = f"batch {child_id} failed: "
        failures = [_item_failure(item, err, prefix) for item in part[: job.max_failures]]
        return FanOutSummary(
            total=len(part),
            failed=len(part),
            failures=failures,
            failures_omitted=len(part) - len(failures),
        )
    if stopped:  # cancelled, or never started, by fail_fast
        return FanOutSummary(total=len(part), not_run=len(part))
    return FanOutSummary()  # not started yet: the next run takes it


def _item_failure(item: int, err: BaseException | None, prefix: str) -> ItemFailure:
    cause = err
    if isinstance(err, ActivityError | ChildWorkflowError) and err.cause is not None:
        cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type:
        kind = cause.type
    else:
        kind = type(cause).__name__
    return ItemFailure(item, kind, prefix + str(cause))


def _merge(a: FanOutSummary, b: FanOutSummary, max_failures: int) -> FanOutSummary:
    failures = a.failures + b.failures
    return FanOutSummary(
        total=a.total + b.total,
        succeeded=a.succeeded + b.succeeded,
        failed=a.failed + b.failed,
        not_run=a.not_run + b.not_run,
        failures=failures[:max_failures],
        failures_omitted=(
            a.failures_omitted + b.failures_omitted + max(0, len(failures) - max_failures)
        ),
        workflow_runs=a.workflow_runs + b.workflow_runs,
        max_history_length=max(a.max_history_length, b.max_history_length),
    )


def _span(count: int, batch_size: int, max_children: int) -> int:
    """Items per child: a batch, or as many batches as keep the children to ``max_children``
    (each level of the tree multiplies a child's reach by ``max_children``)."""
    span = batch_size
    while -(-count // span) > max_children:
        span *= max_children
    return span


def _delta(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


async def map_activity_in_batches(
    activity: Callable[..., Any] | str,
    items: range | int,
    *,
    args: Sequence[Any] = (),
    batch_size: int = 1000,
    max_children: int = 100,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    max_concurrent_children: int = 10,
    fail_fast: bool = False,
    max_failures: int = 100,
    continue_as_new_after: int | None = None,
    id_prefix: str | None = None,
    task_queue: str | None = None,
    start_to_close_timeout: timedelta | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
) -> FanOutSummary:
    """Run an activity over a range of items too large for one history, in a tree of
    ``FanOutBatch`` child workflows, and report counts and failures.

    Call it from workflow code, and register :class:`FanOutBatch` on the worker. The items
    are a ``range`` (or a count, ``range(count)``); the activity is called with ``*args``
    and one item of the range, and loads what the item stands for (a row, a file, a slice)
    itself, so no history holds the data. Its return value is dropped: store the output
    where it belongs and return nothing.

    The tree: a leaf child runs at most ``batch_size`` items, ``max_concurrency`` activities
    at a time; a node starts at most ``max_children`` children, ``max_concurrent_children``
    at a time, and a level is added when the leaves would be more (1,000,000 items with the
    defaults: 10 children of 100 leaves of 1,000). So this workflow's history grows by about
    3 events per child, at most ``max_children``, and each leaf's by about 3 per item. A run
    that passes ``continue_as_new_after`` events (or 4,096, when perdure suggests it) lets
    its running work finish and continues as new, so no history grows without bound.

    Failures are per item: an activity that fails after its retries is counted and listed
    (the first ``max_failures``), the rest go on. A batch that fails as a whole (terminated,
    timed out) counts its items failed. With ``fail_fast``, the first failure stops the
    tree: nothing more starts, running batches are cancelled, and their items count as
    ``not_run``.

    Child ids are ``"<id_prefix>/<first>-<end>"``, positions in the input;
    ``id_prefix`` defaults to ``"<this workflow's id>-fan-out"``.

    Args:
        activity: the activity function, or its registered name.
        items: the items, as a range, or their count.
        args: arguments passed before the item, the same for every item (keep them small:
            every child's input carries them).
        batch_size: the most items one leaf runs.
        max_children: the most children one workflow starts.
        max_concurrency: activities in flight at once, per leaf.
        max_concurrent_children: children running at once, per node (so up to
            ``max_concurrent_children ** depth * max_concurrency`` activities in flight).
        fail_fast: stop everything at the first failure.
        max_failures: how many failures to list (all are counted).
        continue_as_new_after: a child run continues as new once its history reaches this
            many events.
        id_prefix: the prefix of the children's workflow ids.
        task_queue: the queue of the children and their activities (default: this
            workflow's).

    Returns:
        The counts, the first failures and the size of the tree.

    Raises:
        ValueError: a size is below its minimum, or neither ``start_to_close_timeout`` nor
            ``schedule_to_close_timeout`` was given (fails the workflow task).

    Example::

        summary = await map_activity_in_batches(
            reindex_document, range(1_000_000), args=["index-v2"],
            start_to_close_timeout=timedelta(minutes=1))
        if not summary.ok:
            raise ApplicationError(f"{summary.failed} documents failed")
    """
    if start_to_close_timeout is None and schedule_to_close_timeout is None:
        raise ValueError(
            "map_activity_in_batches needs start_to_close_timeout or schedule_to_close_timeout"
        )
    for name, value, least in (
        ("batch_size", batch_size, 1),
        ("max_children", max_children, 2),
        ("max_concurrency", max_concurrency, 1),
        ("max_concurrent_children", max_concurrent_children, 1),
        ("max_failures", max_failures, 0),
    ):
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
    whole = range(items) if isinstance(items, int) else items
    if isinstance(activity, str):
        activity_type = activity
    else:
        activity_type = ActivityDefinition.from_callable(activity).name
    job = BatchJob(
        activity=activity_type,
        args=list(args),
        start=whole.start,
        stop=whole.stop,
        step=whole.step,
        offset=0,
        id_prefix=id_prefix if id_prefix is not None else f"{info().workflow_id}-fan-out",
        batch_size=batch_size,
        max_children=max_children,
        max_concurrency=max_concurrency,
        max_concurrent_children=max_concurrent_children,
        fail_fast=fail_fast,
        max_failures=max_failures,
        continue_as_new_after=continue_as_new_after,
        task_queue=task_queue,
        start_to_close_timeout=_seconds(start_to_close_timeout),
        schedule_to_close_timeout=_seconds(schedule_to_close_timeout),
        schedule_to_start_timeout=_seconds(schedule_to_start_timeout),
        heartbeat_timeout=_seconds(heartbeat_timeout),
        retry_policy=retry_policy.to_dict() if retry_policy is not None else None,
    )
    if not whole:
        return FanOutSummary()
    # This workflow is the root: it always hands the items to children (even a single
    # batch), never continues as new (it is the caller's), and is not counted in the tree.
    summary, _ = await _run_children(job, whole, keep_starting=None)
    return summary
