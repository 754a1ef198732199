"""The activity calls of workflow code: schedule an activity (or run a local one inside the
workflow task) and await its result. Each checks its arguments and hands the call to the
running workflow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from perdure._common import identifiers as ids
from perdure.activity._definition import ActivityDefinition
from perdure.common._priority import Priority, priority_dict
from perdure.common._retry import RetryPolicy
from perdure.workflow._api import _ARG_UNSET, _seconds
from perdure.workflow._context import current
from perdure.workflow._info import ActivityCancellationType, ActivityHandle


def start_activity(
    activity: Callable[..., Any] | str,
    arg: Any = _ARG_UNSET,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: Any = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    priority: Priority | None = None,
    concurrency_key: str | None = None,
) -> ActivityHandle[Any]:
    """Schedule an activity and return its handle (await it for the result).

    One of ``start_to_close_timeout`` or ``schedule_to_close_timeout`` is required.
    Activities retry by default (1 s, doubling, at most 100 s apart, no attempt limit).
    ``priority`` orders it in its task queue (unset fields come from the workflow's);
    ``concurrency_key`` counts it against the workers' ``max_concurrent_activities_per_key``.
    """
    ctx = current()
    activity_type, args, result_type = _resolve(activity, arg, args, result_type)
    task_queue = ids.check_optional_task_queue(task_queue)
    activity_id = ids.check_activity_id(activity_id)
    if start_to_close_timeout is None and schedule_to_close_timeout is None:
        raise ValueError(
            f"Activity {activity_type!r} needs start_to_close_timeout or "
            "schedule_to_close_timeout: without one, a lost worker would leave it waiting "
            "forever"
        )
    return ctx.start_activity(
        activity_type,
        list(args),
        task_queue=task_queue,
        schedule_to_close_timeout=_seconds(schedule_to_close_timeout, "schedule_to_close"),
        schedule_to_start_timeout=_seconds(schedule_to_start_timeout, "schedule_to_start"),
        start_to_close_timeout=_seconds(start_to_close_timeout, "start_to_close_timeout"),
        heartbeat_timeout=_seconds(heartbeat_timeout, "heartbeat_timeout"),
        retry_policy=retry_policy,  # None: the default policy
        cancellation_type=int(cancellation_type),
        activity_id=activity_id,
        result_type=result_type,
        priority=priority_dict(priority),
        concurrency_key=_concurrency_key(concurrency_key),
    )


def _concurrency_key(key: str | None) -> str | None:
    if key is not None and (not isinstance(key, str) or not key or len(key) > 255):
        raise ValueError(
            f"concurrency_key must be a non-empty string of at most 255 characters, or None; "
            f"got {key!r}"
        )
    return key


async def execute_activity(
    activity: Callable[..., Any] | str,
    arg: Any = _ARG_UNSET,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    result_type: Any = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    priority: Priority | None = None,
    concurrency_key: str | None = None,
) -> Any:
    """Run an activity and return its result (:func:`start_activity`, then await).

    Raises:
        ActivityError: the activity failed for good; ``.cause`` says why.

    Example::

        receipt = await workflow.execute_activity(
            charge, order, start_to_close_timeout=timedelta(seconds=30))
    """
    return await start_activity(
        activity,
        arg,
        args=args,
        task_queue=task_queue,
        result_type=result_type,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        start_to_close_timeout=start_to_close_timeout,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy,
        cancellation_type=cancellation_type,
        activity_id=activity_id,
        priority=priority,
        concurrency_key=concurrency_key,
    )


def start_local_activity(
    activity: Callable[..., Any] | str,
    arg: Any = _ARG_UNSET,
    *,
    args: Sequence[Any] = (),
    result_type: Any = None,
    schedule_to_close_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
) -> ActivityHandle[Any]:
    """Run a short activity inside the workflow task, in the worker that runs the workflow:
    no task queue round trip, its outcome recorded as a marker. Retries happen in the worker.

    Use it for quick, local work (a lookup, a computation with side effects); long or
    heartbeating work belongs in a regular activity. One of ``start_to_close_timeout`` or
    ``schedule_to_close_timeout`` is required.
    """
    ctx = current()
    activity_type, args, result_type = _resolve(activity, arg, args, result_type)
    activity_id = ids.check_activity_id(activity_id)
    if start_to_close_timeout is None and schedule_to_close_timeout is None:
        raise ValueError(
            f"Local activity {activity_type!r} needs start_to_close_timeout or "
            "schedule_to_close_timeout"
        )
    return ctx.start_local_activity(
        activity_type,
        list(args),
        schedule_to_close_timeout=_seconds(schedule_to_close_timeout, "schedule_to_close"),
        start_to_close_timeout=_seconds(start_to_close_timeout, "start_to_close_timeout"),
        retry_policy=retry_policy,  # None: the default policy
        cancellation_type=int(cancellation_type),
        activity_id=activity_id,
        result_type=result_type,
    )


async def execute_local_activity(
    activity: Callable[..., Any] | str,
    arg: Any = _ARG_UNSET,
    *,
    args: Sequence[Any] = (),
    result_type: Any = None,
    schedule_to_close_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
) -> Any:
    """Run a local activity and return its result (see :func:`start_local_activity`)."""
    return await start_local_activity(
        activity,
        arg,
        args=args,
        result_type=result_type,
        schedule_to_close_timeout=schedule_to_close_timeout,
        start_to_close_timeout=start_to_close_timeout,
        retry_policy=retry_policy,
        cancellation_type=cancellation_type,
        activity_id=activity_id,
    )


# Activities defined as methods (registered on the worker as bound methods of an instance)
# are called by their unbound method here, as in Temporal.
start_activity_method = start_activity
execute_activity_method = execute_activity
start_local_activity_method = start_local_activity
execute_local_activity_method = execute_local_activity


def _resolve(
    activity: Any, arg: Any, args: Sequence[Any], result_type: Any
) -> tuple[str, Sequence[Any], Any]:
    """An activity call's checked type name, its arguments (``arg`` or ``args``) and the
    result type (the function's return annotation unless one is given)."""
    if isinstance(activity, str):
        activity_type = activity
    else:
        defn = ActivityDefinition.from_callable(activity)
        activity_type = defn.name
        if result_type is None:
            result_type = defn.ret_type
    if arg is not _ARG_UNSET:
        if args:
            raise ValueError("Give either arg or args, not both")
        args = (arg,)
    return ids.check_activity_type(activity_type), args, result_type
