"""``ActivityEnvironment``: one activity function run in a test, as a worker would run it."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast

from perdure.activity._context import (
    ActivityContext,
    Info,
    bind_sync_activity,
    run_async_activity,
)
from perdure.converter import DataConverter, PayloadConverter
from perdure.worker._conversion import check_details

_P = ParamSpec("_P")
_R = TypeVar("_R")

_EPOCH = datetime.fromtimestamp(0, UTC)


class ActivityEnvironment:
    """Runs activity functions with the ``perdure.activity`` functions working inside them,
    without a worker or a database: heartbeats go to :attr:`on_heartbeat`, and
    :meth:`cancel` and :meth:`worker_shutdown` act as a workflow and a worker would.

    ``run(fn, *args)`` calls ``fn(*args)`` in an activity context. For an ``async def``
    function it returns an awaitable, run as its own task the way a worker runs it; a plain
    function is called in the calling thread and ``run`` returns its result (to run it beside
    your test, as a worker runs it in its thread pool, use
    ``await asyncio.to_thread(env.run, fn, *args)``). Whatever the function raises, ``run``
    raises, including ``activity.CompleteAsyncError`` from ``activity.raise_complete_async()``.

    Attributes:
        info: What ``activity.info()`` returns, taken when ``run`` starts. It begins as
            :meth:`default_info`; change fields with ``dataclasses.replace``. Its timeouts
            are not enforced.
        on_heartbeat: Called with the details of each ``activity.heartbeat(*details)``, in
            the activity's thread, as they would reach the next attempt in
            ``activity.info().heartbeat_details``: through the payload converter and back,
            as the worker stores them (a tuple comes back as a list, a dataclass as a dict).
            Details the converter cannot encode raise ``PayloadConverterError`` from
            ``heartbeat``, as in a worker (where, uncaught, it fails the activity for good).
        payload_converter: The converter heartbeat details go through.

    Example::

        @activity.defn
        async def import_rows(total: int) -> int:
            for row in range(total):
                activity.heartbeat(row + 1)
            return total

        env = ActivityEnvironment()
        progress = []
        env.on_heartbeat = lambda *details: progress.append(details[0])
        assert await env.run(import_rows, 3) == 3
        assert progress == [1, 2, 3]
    """

    def __init__(self) -> None:
        self.info: Info = self.default_info()
        self.on_heartbeat: Callable[..., None] = lambda *details: None
        self.payload_converter: PayloadConverter = DataConverter.default.payload_converter
        self._lock = threading.Lock()
        self._cancel_requested = False
        self._worker_shutdown = threading.Event()
        self._running: set[_Attempt] = set()

    @staticmethod
    def default_info() -> Info:
        """The ``info`` a new environment starts with: a first attempt, ids such as ``"test"``,
        one-second timeouts, times at the Unix epoch."""
        return Info(
            activity_id="test",
            activity_type="unknown",
            attempt=1,
            task_queue="test",
            task_token=b"test",
            workflow_id="test",
            workflow_run_id="test-run",
            workflow_type="test",
            workflow_namespace="default",
            heartbeat_details=(),
            heartbeat_timeout=None,
            schedule_to_close_timeout=timedelta(seconds=1),
            start_to_close_timeout=timedelta(seconds=1),
            scheduled_time=_EPOCH,
            started_time=_EPOCH,
        )

    def run(self, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Run ``fn(*args, **kwargs)`` as an activity.

        Args:
            fn: The function, usually an ``@activity.defn`` one (any callable works).
            *args: Its positional arguments, passed as they are (not through a converter).
            **kwargs: Its keyword arguments.

        Returns:
            What ``fn`` returns; for an ``async def`` function, an awaitable of it.
        """
        if _is_async(fn):
            # fn(...) returns a coroutine, so _R is one: hand back one that runs it.
            return cast(_R, self._run_async(cast(Callable[..., Awaitable[Any]], fn), args, kwargs))
        attempt = _Attempt(self, None)
        with self._track(attempt):
            return bind_sync_activity(attempt.context, fn, *args, **kwargs)()

    def cancel(self) -> None:
        """Request the cancellation of the running activities and of those run later, as a
        workflow's ``handle.cancel()`` would.

        As in a worker, an activity learns of it through its heartbeats: at once if it has
        heartbeated already, otherwise on its next ``activity.heartbeat()``; one that never
        heartbeats runs to its end. An ``async`` activity then gets ``asyncio.CancelledError``
        at the ``await`` it is at, just after its heartbeat call returns (``run`` raises it
        unless the activity handles it); a sync one finds ``activity.is_cancelled()`` true
        (``activity.wait_for_cancelled_sync()`` returns) and should raise.

        Only the first call has an effect.
        """
        with self._lock:
            if self._cancel_requested:
                return
            self._cancel_requested = True
            running = list(self._running)
        for attempt in running:
            attempt.cancel_requested()

    def worker_shutdown(self) -> None:
        """Tell the running activities, and those run later, that the worker is shutting
        down: ``activity.is_worker_shutdown()`` becomes true. (A worker cancels the activities
        still running once its ``graceful_shutdown_timeout`` has passed; test that with
        :meth:`cancel`.)"""
        self._worker_shutdown.set()

    async def _run_async(
        self, fn: Callable[..., Awaitable[Any]], args: Sequence[Any], kwargs: dict[str, Any]
    ) -> Any:
        loop = asyncio.get_running_loop()
        attempt = _Attempt(self, loop)
        with self._track(attempt):
            attempt.task = loop.create_task(
                run_async_activity(attempt.context, fn, *args, **kwargs)
            )
            return await attempt.task

    @contextlib.contextmanager
    def _track(self, attempt: _Attempt) -> Iterator[None]:
        with self._lock:
            self._running.add(attempt)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(attempt)


class _Attempt:
    """One ``run``: its activity context, and whether it has learned of a cancellation."""

    def __init__(self, env: ActivityEnvironment, loop: asyncio.AbstractEventLoop | None) -> None:
        self._env = env
        self._loop = loop  # None for a sync function
        self._heartbeated = False
        self.task: asyncio.Task[Any] | None = None
        self._cancelled = threading.Event()
        self._cancelled_async = asyncio.Event()
        self.context = ActivityContext(
            env.info,
            self._heartbeat,
            self._cancelled,
            env._worker_shutdown,
            self._wait_cancelled if loop is not None else None,
            env.payload_converter,
        )

    def _heartbeat(self, details: Sequence[Any]) -> None:
        env = self._env
        converter = env.payload_converter
        what = f"the heartbeat details of activity {self.context.info.activity_type!r}"
        env.on_heartbeat(*converter.from_payloads(check_details(converter, details, what)))
        # Checked after on_heartbeat, so a cancel() made there is learned from this heartbeat,
        # as a cancellation recorded before a heartbeat reaches the store is.
        with env._lock:
            self._heartbeated = True
            learn = env._cancel_requested
        if learn:
            self._learn_cancel()

    def cancel_requested(self) -> None:
        with self._env._lock:
            learn = self._heartbeated
        if learn:
            self._learn_cancel()

    def _learn_cancel(self) -> None:
        if self._loop is None:
            self._cancelled.set()
        else:
            # The worker learns of it from the heartbeat's reply, after the heartbeat call has
            # returned: a task cancelled only then gets it at its next await, and one that
            # returns first completes.
            self._loop.call_soon_threadsafe(self._cancel_task)

    def _cancel_task(self) -> None:
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        self._cancelled_async.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def _wait_cancelled(self) -> asyncio.Future[None]:
        async def wait() -> None:
            await self._cancelled_async.wait()

        return asyncio.ensure_future(wait())


def _is_async(fn: Callable[..., Any]) -> bool:
    # The second case: an object whose class has an async __call__.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
