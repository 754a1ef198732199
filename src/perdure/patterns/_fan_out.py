"""Fan-out / fan-in in workflow code: run a function, an activity or a child workflow over
many items, at most ``max_concurrency`` at a time, and collect every item's outcome.

The bound is kept by ``max_concurrency`` *lanes*, tasks of the workflow's event loop that each
take the next item when they finish one. Items start in input order and the loop runs ready
tasks in order, so a run and its replay start the same items at the same moments.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast, overload

from perdure._errors import (
    ActivityError,
    ChildWorkflowError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from perdure._errors import CancelledError as FailureCancelledError
from perdure.common import RetryPolicy, TypedSearchAttributes, WorkflowIDReusePolicy
from perdure.workflow import (
    ActivityCancellationType,
    ChildWorkflowCancellationType,
    ParentClosePolicy,
    execute_activity,
    execute_child_workflow,
    info,
)
from perdure.workflow._definition import WorkflowDefinition

I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")

DEFAULT_MAX_CONCURRENCY = 100


class ItemStatus(enum.StrEnum):
    """How one item of a fan-out ended."""

    COMPLETED = "completed"
    """It returned a value."""
    FAILED = "failed"
    """It raised a failure (an ``ActivityError``, ``ChildWorkflowError``, ...)."""
    CANCELLED = "cancelled"
    """It was running when ``fail_fast`` stopped the fan-out, and was cancelled."""
    NOT_STARTED = "not_started"
    """``fail_fast`` stopped the fan-out before it started."""


@dataclass(frozen=True)
class ItemOutcome(Generic[R]):
    """One item's outcome: its value, or the error that ended it.

    Attributes:
        index: the item's position in the input.
        status: how it ended.
        value: what it returned (``None`` unless ``status`` is ``COMPLETED``).
        error: what it raised: for ``FAILED``, the failure (``ActivityError`` and
            ``ChildWorkflowError`` carry the item's own error as ``.cause``); for
            ``CANCELLED``, the cancellation, when one was raised.
    """

    index: int
    status: ItemStatus
    value: R | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the item completed."""
        return self.status is ItemStatus.COMPLETED


@dataclass(frozen=True)
class FanOutResult(Generic[R]):
    """Every item's outcome, in input order.

    Example::

        result = await map_activity(resize, images, start_to_close_timeout=MINUTE)
        for failed in result.failures:
            workflow.logger.warning("%s: %s", images[failed.index], failed.error)
        thumbnails = [o.value for o in result.outcomes if o.ok]
    """

    outcomes: list[ItemOutcome[R]]

    @property
    def ok(self) -> bool:
        """Whether every item completed."""
        return all(o.ok for o in self.outcomes)

    @property
    def failures(self) -> list[ItemOutcome[R]]:
        """The items that failed, in input order (not those cancelled or never started)."""
        return [o for o in self.outcomes if o.status is ItemStatus.FAILED]

    def values(self) -> list[R]:
        """Every item's value, in input order.

        Raises:
            FailureError: the first failed item's error (an ``ActivityError``, a
                ``ChildWorkflowError``, ...), if any item failed. Left uncaught in workflow
                code it fails the workflow, as a single failed activity would.
        """
        failures = self.failures
        if failures:
            raise cast(BaseException, failures[0].error)
        # Items end CANCELLED or NOT_STARTED only after a failure stopped the fan-out, so
        # without failures every item completed.
        return [cast(R, o.value) for o in self.outcomes]


def _caused_by_cancellation(err: BaseException) -> bool:
    if isinstance(err, asyncio.CancelledError | FailureCancelledError):
        return True
    if isinstance(err, ActivityError | ChildWorkflowError):
        return isinstance(err.cause, FailureCancelledError | asyncio.CancelledError)
    return False


def _is_item_failure(err: BaseException) -> bool:
    # The errors that fail a workflow fail an item; anything else is a bug in the workflow
    # code and fails the workflow task, as it would outside a fan-out.
    return isinstance(err, FailureError | WorkflowAlreadyStartedError)


def _check_concurrency(max_concurrency: int) -> None:
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")


async def run_bounded(
    count: int,
    run_item: Callable[[int], Awaitable[R]],
    *,
    max_concurrency: int,
    fail_fast: bool,
    keep_starting: Callable[[], bool] | None = None,
) -> list[ItemOutcome[R]]:
    """Run ``run_item(0..count-1)``, at most ``max_concurrency`` at a time, in index order.

    ``keep_starting`` is asked before each start; once it says no, nothing more starts, the
    running items finish, and the items never started are ``NOT_STARTED`` (batches use it to
    continue as new).
    """
    _check_concurrency(max_concurrency)
    outcomes: list[ItemOutcome[R] | None] = [None] * count
    # The lanes running an item, in the order they took it (a dict: a set's order would
    # differ between a run and its replay, and so would the order of the cancellations).
    busy: dict[asyncio.Task[Any] | None, None] = {}
    next_index = 0
    stopped = False  # by fail_fast

    def stop() -> None:
        nonlocal stopped
        stopped = True
        # Only lanes inside an item are cancelled; the others see ``stopped`` and end (one not
        # yet started, cancelled, would end gather with a CancelledError).
        for lane in list(busy):
            if lane is not None and lane is not asyncio.current_task():
                lane.cancel()

    async def lane() -> None:
        nonlocal next_index
        me = asyncio.current_task()
        while not stopped and next_index < count:
            if keep_starting is not None and not keep_starting():
                return
            index = next_index
            next_index += 1
            busy[me] = None
            try:
                value = await run_item(index)
            except BaseException as err:
                if _caused_by_cancellation(err):
                    if stopped:
                        outcomes[index] = ItemOutcome(index, ItemStatus.CANCELLED, error=err)
                        return
                    if isinstance(err, asyncio.CancelledError) or (me and me.cancelling()):
                        raise  # the workflow (or the caller) is being cancelled
                if not _is_item_failure(err):
                    raise
                outcomes[index] = ItemOutcome(index, ItemStatus.FAILED, error=err)
                if fail_fast and not stopped:
                    stop()
            else:
                outcomes[index] = ItemOutcome(index, ItemStatus.COMPLETED, value)
            finally:
                busy.pop(me, None)

    await asyncio.gather(*(lane() for _ in range(min(max_concurrency, count))))
    return [
        o if o is not None else ItemOutcome(i, ItemStatus.NOT_STARTED)
        for i, o in enumerate(outcomes)
    ]


async def map_concurrently(
    fn: Callable[[I], Awaitable[R]],
    items: Iterable[I],
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    fail_fast: bool = False,
) -> FanOutResult[R]:
    """Await ``fn(item)`` for every item, at most ``max_concurrency`` at a time, and collect
    each item's outcome, in input order.

    Call it from workflow code. Items start in input order; each next item starts when one
    finishes, so at most ``max_concurrency`` are ever in flight, and replay starts them in
    the same order. ``fn`` is any workflow code: several activities in a row, a child
    workflow, a timer.

    An item *fails* when ``fn`` raises an error that would fail a workflow (a
    ``FailureError`` such as ``ActivityError``, ``ChildWorkflowError``, ``ApplicationError``;
    or ``WorkflowAlreadyStartedError``): it is recorded and the others go on. Any other
    exception is a bug and propagates, failing the workflow task as it would outside a
    fan-out. If the workflow is cancelled, the running items are cancelled and the
    cancellation propagates.

    Args:
        fn: an async function of one item.
        items: the inputs.
        max_concurrency: at most this many items in flight.
        fail_fast: on the first failure, start no more items and cancel the running ones
            (they end ``CANCELLED``, the others ``NOT_STARTED``).

    Returns:
        Every item's outcome; ``.values()`` raises the first failure, if any.

    Example::

        async def charge(order: Order) -> Receipt:
            await workflow.execute_activity(reserve, order, start_to_close_timeout=MINUTE)
            return await workflow.execute_activity(pay, order, start_to_close_timeout=MINUTE)

        result = await map_concurrently(charge, orders, max_concurrency=10)
    """
    inputs = list(items)
    outcomes = await run_bounded(
        len(inputs),
        lambda i: fn(inputs[i]),
        max_concurrency=max_concurrency,
        fail_fast=fail_fast,
    )
    return FanOutResult(outcomes)


@overload
async def map_activity(
    activity: Callable[..., Awaitable[R]],
    items: Iterable[Any],
    *,
    args: Sequence[Any] = (),
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    fail_fast: bool = False,
    task_queue: str | None = None,
    result_type: Any = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
) -> FanOutResult[R]: ...


@overload
async def map_activity(
    activity: Callable[..., R],
    items: Iterable[Any],
    *,
    args: Sequence[Any] = (),
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    fail_fast: bool = False,
    task_queue: str | None = None,
    result_type: Any = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
) -> FanOutResult[R]: ...


@overload
async def map_activity(
    activity: str,
    items: Iterable[Any],
    *,
    args: Sequence[Any] = (),
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    fail_fast: bool = False,
    task_queue: str | None = None,
    result_type: Any = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
) -> FanOutResult[Any]: ...


async def map_activity(
    activity: Callable[..., Any] | str,
    items: Iterable[Any],
    *,
    args: Sequence[Any] = (),
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    fail_fast: bool = False,
    task_queue: str | None = None,
    result_type: Any = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
) -> FanOutResult[Any]:
    """Run an activity once per item, at most ``max_concurrency`` at a time, and collect
    each item's result or failure, in input order.

    Call it from workflow code. Each item is the activity's last argument, after ``args``
    (the same for every item). The activity options are ``workflow.execute_activity``'s and
    apply to every item: each item is retried on its own, and fails only once its retry
    policy gives up. A failed item is recorded (its ``error`` is the ``ActivityError``) and
    the others go on, unless ``fail_fast``. See :func:`map_concurrently` for the rules.

    Each activity adds about 3 events to this workflow's history, so keep one call to some
    thousands of items; for more, use :func:`map_activity_in_batches`.

    Args:
        activity: the activity function, or its registered name (then ``result_type=``).
        items: one activity per item.
        args: arguments passed before the item, the same for every item.
        max_concurrency: at most this many activities scheduled at once.
        fail_fast: on the first failure, schedule no more and cancel the running ones.

    Returns:
        Every item's outcome; ``.values()`` returns the results or raises the first failure.

    Raises:
        ValueError: neither ``start_to_close_timeout`` nor ``schedule_to_close_timeout`` was
            given, or ``max_concurrency`` is below 1 (fails the workflow task).

    Example::

        result = await map_activity(
            make_thumbnail, images, max_concurrency=20,
            start_to_close_timeout=timedelta(minutes=1))
        thumbnails = result.values()
    """
    if start_to_close_timeout is None and schedule_to_close_timeout is None:
        raise ValueError(
            "map_activity needs start_to_close_timeout or schedule_to_close_timeout, as "
            "workflow.execute_activity does"
        )
    leading = list(args)

    async def run_one(item: Any) -> Any:
        return await execute_activity(
            activity,
            args=[*leading, item],
            task_queue=task_queue,
            result_type=result_type,
            schedule_to_close_timeout=schedule_to_close_timeout,
            schedule_to_start_timeout=schedule_to_start_timeout,
            start_to_close_timeout=start_to_close_timeout,
            heartbeat_timeout=heartbeat_timeout,
            retry_policy=retry_policy,
            cancellation_type=cancellation_type,
        )

    return await map_concurrently(
        run_one, items, max_concurrency=max_concurrency, fail_fast=fail_fast
    )


async def map_child_workflows(
    workflow: Callable[..., Awaitable[R]] | str,
    items: Iterable[I],
    *,
    args: Sequence[Any] = (),
    id: Callable[[int, I], str] | None = None,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    fail_fast: bool = False,
    task_queue: str | None = None,
    result_type: Any = None,
    cancellation_type: ChildWorkflowCancellationType = (
        ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
    ),
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    retry_policy: RetryPolicy | None = None,
    memo: dict[str, Any] | None = None,
    search_attributes: TypedSearchAttributes | None = None,
) -> FanOutResult[R]:
    """Run a child workflow per item, at most ``max_concurrency`` at a time, and collect
    each child's result or failure, in input order.

    Call it from workflow code. Each item is the child's last argument, after ``args``. The
    options are ``workflow.execute_child_workflow``'s and apply to every child. A failed,
    timed-out or terminated child is recorded (its ``error`` is the ``ChildWorkflowError``,
    or ``WorkflowAlreadyStartedError`` if its id was taken) and the others go on, unless
    ``fail_fast``, which cancels the running children as their ``cancellation_type`` says.
    See :func:`map_concurrently` for the rules.

    Args:
        workflow: the child's run method (``Child.run``) or its workflow type name.
        items: one child per item.
        args: arguments passed before the item, the same for every child.
        id: the child's workflow id from the item's index and the item; by default
            ``"<this workflow's id>-<child type>-<index>"``. Ids must not collide with
            running workflows.
        max_concurrency: at most this many children running at once.
        fail_fast: on the first failure, start no more children and cancel the running
            ones.

    Returns:
        Every child's outcome; ``.values()`` returns the results or raises the first failure.

    Example::

        result = await map_child_workflows(
            ProcessBatch.run, batches, max_concurrency=5,
            id=lambda i, batch: f"{job_id}-batch-{i:03d}")
    """
    _check_concurrency(max_concurrency)
    inputs = list(items)
    leading = list(args)
    child_id: Callable[[int, I], str]
    if id is None:
        prefix = f"{info().workflow_id}-{_workflow_type(workflow)}"
        child_id = lambda index, _item: f"{prefix}-{index}"  # noqa: E731
    else:
        child_id = id

    async def run_one(index: int) -> R:
        result: R = await execute_child_workflow(
            workflow,
            args=[*leading, inputs[index]],
            id=child_id(index, inputs[index]),
            task_queue=task_queue,
            result_type=result_type,
            cancellation_type=cancellation_type,
            parent_close_policy=parent_close_policy,
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
            task_timeout=task_timeout,
            id_reuse_policy=id_reuse_policy,
            retry_policy=retry_policy,
            memo=memo,
            search_attributes=search_attributes,
        )
        return result

    outcomes = await run_bounded(
        len(inputs), run_one, max_concurrency=max_concurrency, fail_fast=fail_fast
    )
    return FanOutResult(outcomes)


def _workflow_type(workflow: Callable[..., Any] | str) -> str:
    if isinstance(workflow, str):
        return workflow
    return WorkflowDefinition.from_run_fn(workflow).name
