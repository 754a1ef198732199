"""What an activity can ask about itself while it runs: ``activity.info()``, heartbeats,
cancellation. The worker sets the context; these functions only read it."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn, ParamSpec, TypeVar

from perdure._errors import PerdureError
from perdure.common._priority import Priority
from perdure.converter import DataConverter, PayloadConverter

_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Info:
    """About the running activity attempt."""

    activity_id: str
    activity_type: str
    attempt: int
    task_queue: str
    task_token: bytes
    workflow_id: str
    workflow_run_id: str
    workflow_type: str
    workflow_namespace: str
    heartbeat_details: Sequence[Any]
    heartbeat_timeout: timedelta | None
    schedule_to_close_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    scheduled_time: datetime
    started_time: datetime
    is_local: bool = False
    priority: Priority = Priority.default
    """The activity's priority (as scheduled, unset fields taken from its workflow's)."""

    @property
    def idempotency_key(self) -> str:
        """A key stable across retries of this activity (the same for every attempt):
        pass it to external systems so a retried attempt does not act twice."""
        return (
            f"{self.workflow_namespace}/{self.workflow_id}/{self.workflow_run_id}/"
            f"{self.activity_id}"
        )


class CompleteAsyncError(BaseException):
    """Raised by :func:`raise_complete_async`: the activity will be completed later, by the
    client, with its task token."""


@dataclass
class ActivityContext:
    """What the functions of this module read. Whoever runs an activity builds one (the
    worker, local activities, ``ActivityEnvironment``) and runs the function under it with
    :func:`run_async_activity` or :func:`bind_sync_activity`."""

    info: Info
    heartbeat: Callable[[Sequence[Any]], None]
    cancelled: threading.Event
    worker_shutdown: threading.Event
    cancel_waiter: Callable[[], asyncio.Future[None]] | None = None
    payload_converter: PayloadConverter = DataConverter.default.payload_converter
    # The outbound interceptor chain (an ActivityOutboundInterceptor) when the worker has
    # interceptors: info() and heartbeat() go through it.
    outbound: Any = None


_current: contextvars.ContextVar[ActivityContext | None] = contextvars.ContextVar(
    "perdure_activity", default=None
)


class NotInActivityError(PerdureError, RuntimeError):
    """A ``perdure.activity`` function was called outside an activity."""


def _ctx() -> ActivityContext:
    ctx = _current.get()
    if ctx is None:
        raise NotInActivityError(
            "Not in an activity: this function only works inside an @activity.defn function "
            "run by a perdure Worker (or ActivityEnvironment in tests)"
        )
    return ctx


async def run_async_activity(
    ctx: ActivityContext,
    fn: Callable[_P, Awaitable[_R]],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> _R:
    """Await an async activity function with ``ctx`` as its context."""
    token = _current.set(ctx)
    try:
        return await fn(*args, **kwargs)
    finally:
        _current.reset(token)


def bind_sync_activity(
    ctx: ActivityContext, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs
) -> Callable[[], _R]:
    """A sync activity function's call, to be made in any thread with ``ctx`` as its context
    (in a copy of the caller's context variables, as ``asyncio.to_thread`` would)."""
    context = contextvars.copy_context()
    context.run(_current.set, ctx)
    return lambda: context.run(fn, *args, **kwargs)


def in_activity() -> bool:
    """Whether the caller runs inside an activity."""
    return _current.get() is not None


def info() -> Info:
    """About the running activity: ids, type, attempt, timeouts, last heartbeat details."""
    ctx = _ctx()
    if ctx.outbound is not None:
        result: Info = ctx.outbound.info()
        return result
    return ctx.info


def payload_converter() -> PayloadConverter:
    """The payload converter of the worker running this activity: what a dynamic activity
    reads its ``RawValue`` arguments with.

    Example::

        @activity.defn(dynamic=True)
        async def any_greeting(args: Sequence[RawValue]) -> str:
            name = activity.payload_converter().from_payload(args[0].payload, str)
            return f"{activity.info().activity_type}: {name}"
    """
    return _ctx().payload_converter


def heartbeat(*details: Any) -> None:
    """Report progress. The details reach the next attempt (``info().heartbeat_details``) if
    this one fails; with a ``heartbeat_timeout``, an attempt that stops heartbeating is
    retried elsewhere. The call returns at once; sending is throttled.

    Raises:
        CancelledError: (``perdure.exceptions``) in a sync activity whose worker has stopped
            waiting for it (it shut down, its graceful timeout passed), so that the function
            ends instead of running on unseen.
    """
    ctx = _ctx()
    if ctx.outbound is not None:
        ctx.outbound.heartbeat(*details)
    else:
        ctx.heartbeat(details)


def is_cancelled() -> bool:
    """Whether cancellation of this activity was requested (learned through heartbeats)."""
    return _ctx().cancelled.is_set()


async def wait_for_cancelled() -> None:
    """Wait until cancellation of this activity is requested."""
    ctx = _ctx()
    if ctx.cancel_waiter is None:
        raise RuntimeError("wait_for_cancelled() is for async activities")
    await ctx.cancel_waiter()


def wait_for_cancelled_sync(timeout: timedelta | float | None = None) -> bool:
    """In a sync activity, block until cancellation is requested or the timeout passes."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    return _ctx().cancelled.wait(seconds)


def is_worker_shutdown() -> bool:
    """Whether the worker running this activity is shutting down."""
    return _ctx().worker_shutdown.is_set()


def raise_complete_async() -> NoReturn:
    """End this function without completing the activity: something else will complete it
    later through ``client.get_async_activity_handle(task_token=info().task_token)``."""
    _ctx()
    raise CompleteAsyncError()


class _ActivityLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """``activity.logger``: tags records with the activity's ids, as Temporal's does:
    ``activity_id``, ``activity_type``, ``attempt``, ``namespace``, ``task_queue``,
    ``workflow_id``, ``workflow_run_id`` (also as ``run_id``) and ``workflow_type`` as fields
    of the record (and in the dict ``temporal_activity``), and appended to the message."""

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        ctx = _current.get()
        if ctx is not None:
            i = ctx.info
            details = {
                "activity_id": i.activity_id,
                "activity_type": i.activity_type,
                "attempt": i.attempt,
                "namespace": i.workflow_namespace,
                "task_queue": i.task_queue,
                "workflow_id": i.workflow_id,
                "workflow_run_id": i.workflow_run_id,
                "workflow_type": i.workflow_type,
            }
            kwargs["extra"] = {"run_id": i.workflow_run_id, **(kwargs.get("extra") or {})}
            msg, kwargs = with_details(msg, args, kwargs, details, "temporal_activity")
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1  # the caller's line, not ours
        self.logger.log(level, msg, *args, **kwargs)


def with_details(
    msg: Any, args: tuple[Any, ...], kwargs: dict[str, Any], details: dict[str, Any], key: str
) -> tuple[Any, dict[str, Any]]:
    """A log call's message and keyword arguments with ``details`` (the ids of the running
    workflow or activity) as fields of the record, as a dict under ``key`` (Temporal's
    ``temporal_workflow`` / ``temporal_activity``), and at the end of the message."""
    kwargs["extra"] = {**details, key: details, **(kwargs.get("extra") or {})}
    suffix = f" ({details})"
    # With arguments the message is %-formatted: a "%" in an id must not be read as a field.
    return f"{msg}{suffix.replace('%', '%%') if args else suffix}", kwargs


logger = _ActivityLogger(logging.getLogger("perdure.activity"), {})
