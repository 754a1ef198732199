"""A deterministic asyncio event loop for workflow code.

Workflow code runs on this loop, never on the worker's: ready callbacks run in FIFO order
until none are left, ``call_later`` becomes a durable timer, and time is the workflow task's
time. ``asyncio`` primitives (``gather``, ``wait_for``, ``Event``, ``Lock``, ``Semaphore``,
``Queue``, ``timeout``) are built on those few methods, so they behave deterministically too.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import sys
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Protocol, TypeVar

from perdure._runtime._guard import DeterminismGuard

T = TypeVar("T")
# Done tasks are first dropped from a loop's list once it holds this many.
_FIRST_DROP = 16


class TimerSink(Protocol):
    """Where the loop sends durable timers (the workflow instance)."""

    def start_timer(
        self, delay: float, handle: DurableTimerHandle
    ) -> None: ...  # records a StartTimer command

    def cancel_timer(self, handle: DurableTimerHandle) -> None: ...

    def on_unhandled_error(self, context: dict[str, Any]) -> None: ...


class DurableTimerHandle(asyncio.TimerHandle):
    """A ``call_later`` that is a timer in history: cancelling it records ``CancelTimer``."""

    seq: int = 0

    def cancel(self) -> None:
        if not self._cancelled:
            loop = getattr(self, "_loop", None)
            if isinstance(loop, WorkflowEventLoop):
                loop.sink.cancel_timer(self)
        super().cancel()


class WorkflowEventLoop(asyncio.AbstractEventLoop):
    """The event loop that runs one workflow's code, one activation at a time."""

    def __init__(self, sink: TimerSink, context: object) -> None:
        self.sink = sink
        # The authoring API finds the running workflow through this attribute.
        self.perdure_context = context
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._time = 0.0
        self._running = False
        # The loop's tasks in the order they were created, for the stack trace query; those
        # done are dropped whenever the list has doubled since (a plain list: a weak
        # mapping per workflow instance cost more than the rest of its loop).
        self._tasks: list[asyncio.Task[Any]] = []
        self._drop_done_at = _FIRST_DROP
        self._closed = False

    # -- driving -------------------------------------------------------------------------
    def set_time(self, now: float) -> None:
        self._time = now

    def run_ready(self) -> bool:
        """Run ready callbacks until none are left. Returns whether any ran."""
        ran = False
        ready = self._ready
        while ready:
            handle = ready.popleft()
            if not handle._cancelled:
                ran = True
                handle._run()
        return ran

    def enqueue(self, handle: asyncio.Handle) -> None:
        """Make a callback ready (a fired timer)."""
        self._ready.append(handle)

    # -- the asyncio.AbstractEventLoop surface workflow code and asyncio use -----------------
    def time(self) -> float:
        return self._time

    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        raise RuntimeError("Workflow code must not use threads (call_soon_threadsafe)")

    def call_later(  # type: ignore[override]
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        when = self._time + max(delay, 0.0)
        handle = DurableTimerHandle(when, callback, args, self, context)
        if delay <= 0:
            self._ready.append(handle)
        else:
            self.sink.start_timer(delay, handle)
        return handle

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_later(when - self._time, callback, *args, context=context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        pass

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[T]:
        task = asyncio.Task(coro, loop=self, name=name, context=context)
        tasks = self._tasks
        tasks.append(task)
        if len(tasks) >= self._drop_done_at:
            self._tasks = tasks = [t for t in tasks if not t.done()]
            self._drop_done_at = max(_FIRST_DROP, 2 * len(tasks))
        return task

    def pending_tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks not done yet, oldest first."""
        return [task for task in self._tasks if not task.done()]

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Its instance is done with (its tasks ended, see ``Ending.dispose``): drop the
        tasks and callbacks, which refer back to the loop, so that reference counting frees
        it."""
        self._closed = True
        self._tasks = []
        self._ready.clear()

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self.sink.on_unhandled_error(context)

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.sink.on_unhandled_error(context)

    def get_task_factory(self) -> None:
        return None

    def set_task_factory(self, factory: Any) -> None:
        raise RuntimeError("Workflow code must not replace the task factory")

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Any, *args: Any
    ) -> Any:
        raise RuntimeError(
            "Workflow code must not run functions in executors (threads): "
            "do that work in an activity"
        )


class Running:
    """Makes the workflow's loop the running loop (and guards determinism) while code runs.

    It also sets the thread's async generator hooks: otherwise an async generator of workflow
    code (an ``@asynccontextmanager``) would be registered with the worker's own loop, which
    would close it from outside any workflow task once it is garbage collected (its
    instance evicted). A workflow's unfinished async generator is dropped instead, as its
    unfinished coroutines are: workflow code runs only inside a workflow task.
    """

    __slots__ = ("_guard", "_hooks", "_loop", "_previous")

    def __init__(self, loop: WorkflowEventLoop, guard: DeterminismGuard | None) -> None:
        self._loop = loop
        self._guard = guard
        self._previous: asyncio.AbstractEventLoop | None = None
        self._hooks: Any = None

    def __enter__(self) -> None:
        self._previous = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self._loop)
        self._loop._running = True
        self._hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(None, _drop_async_generator)
        if self._guard is not None:
            self._guard.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._guard is not None:
            self._guard.__exit__(*exc)
        sys.set_asyncgen_hooks(*self._hooks)
        self._loop._running = False
        asyncio.events._set_running_loop(self._previous)


def _drop_async_generator(agen: object) -> None:
    """The finalizer of workflow code's async generators: nothing runs."""
