"""``workflow.wait`` and ``workflow.as_completed``: ``asyncio.wait`` and
``asyncio.as_completed`` in an order that replays.

asyncio's versions keep what they are given in sets: ``asyncio.wait`` returns the done and
pending tasks as sets, and ``asyncio.as_completed`` makes tasks of coroutines in set order.
A set of tasks is ordered by their memory addresses, which differ from one process to the
next, so code that acts on each element in turn may decide differently on replay. These keep
the caller's order instead: lists in the order given, tasks made in that order. Everything
else (a timeout is a durable timer, the order tasks complete in) is the workflow loop's, and
replays as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from perdure.workflow._api import _seconds

T = TypeVar("T")
FutureT = TypeVar("FutureT", bound="asyncio.Future[Any]")

_RETURN_WHEN = (asyncio.FIRST_COMPLETED, asyncio.FIRST_EXCEPTION, asyncio.ALL_COMPLETED)


async def wait(
    fs: Iterable[FutureT],
    *,
    timeout: timedelta | float | None = None,
    return_when: str = asyncio.ALL_COMPLETED,
) -> tuple[list[FutureT], list[FutureT]]:
    """Wait for tasks (or futures) as ``asyncio.wait`` does, deterministically.

    Args:
        fs: the tasks; coroutines are refused, as by ``asyncio.wait`` (wrap them in
            ``asyncio.create_task``).
        timeout: return by then even if the condition is not met (a durable timer); no
            error is raised, the tasks not done are in ``pending``.
        return_when: ``asyncio.FIRST_COMPLETED``, ``asyncio.FIRST_EXCEPTION`` or
            ``asyncio.ALL_COMPLETED`` (the default).

    Returns:
        ``(done, pending)``: lists, each in the order of ``fs`` (``asyncio.wait`` returns
        sets, whose order can differ on replay).

    Example::

        tasks = [asyncio.create_task(workflow.execute_activity(...)) for ...]
        done, pending = await workflow.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    """
    if asyncio.isfuture(fs) or asyncio.iscoroutine(fs):
        raise TypeError(
            f"workflow.wait() takes an iterable of tasks or futures, not a {type(fs).__name__}"
        )
    if return_when not in _RETURN_WHEN:
        raise ValueError(f"return_when must be one of {', '.join(_RETURN_WHEN)}: {return_when!r}")
    futures = list(dict.fromkeys(fs))
    if not futures:
        raise ValueError("workflow.wait() needs at least one task or future to wait for")
    if any(asyncio.iscoroutine(f) for f in futures):
        raise TypeError(
            "workflow.wait() takes tasks, not coroutines: wrap each in asyncio.create_task()"
        )
    seconds = _seconds(timeout, "timeout")
    if not _met(futures, return_when):
        await _until(futures, return_when, seconds)
    return [f for f in futures if f.done()], [f for f in futures if not f.done()]


def _met(futures: list[FutureT], return_when: str) -> bool:
    if all(f.done() for f in futures):
        return True
    if return_when == asyncio.FIRST_COMPLETED:
        return any(f.done() for f in futures)
    if return_when == asyncio.FIRST_EXCEPTION:
        return any(_failed(f) for f in futures)
    return False


def _failed(f: asyncio.Future[Any]) -> bool:
    return f.done() and not f.cancelled() and f.exception() is not None


async def _until(futures: list[FutureT], return_when: str, seconds: float | None) -> None:
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    left = len(futures)

    def release(*_: Any) -> None:
        if not waiter.done():
            waiter.set_result(None)

    def on_done(f: asyncio.Future[Any]) -> None:
        nonlocal left
        left -= 1
        if left <= 0 or return_when == asyncio.FIRST_COMPLETED or _failed(f):
            release()

    for f in futures:
        f.add_done_callback(on_done)
    timer = loop.call_later(seconds, release) if seconds is not None else None
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()
        for f in futures:
            f.remove_done_callback(on_done)


def as_completed(
    fs: Iterable[Awaitable[T]], *, timeout: timedelta | float | None = None
) -> Iterator[Awaitable[T]]:
    """Awaitables of the results of ``fs`` in the order they complete, as
    ``asyncio.as_completed`` gives them, deterministically: coroutines become tasks in the
    order given.

    Args:
        fs: tasks, futures or coroutines.
        timeout: past it (a durable timer), awaiting the next result raises the built-in
            ``TimeoutError`` (which ``asyncio.TimeoutError`` is).

    Example::

        calls = [workflow.execute_activity(check, host, start_to_close_timeout=...)
                 for host in hosts]
        for next_done in workflow.as_completed(calls):
            report = await next_done
    """
    if asyncio.isfuture(fs) or asyncio.iscoroutine(fs):
        raise TypeError(
            f"workflow.as_completed() takes an iterable of awaitables, not a {type(fs).__name__}"
        )
    seconds = _seconds(timeout, "timeout")
    loop = asyncio.get_running_loop()
    todo = [asyncio.ensure_future(f, loop=loop) for f in dict.fromkeys(fs)]
    # Not completed yet, in the order given: a dict, so that taking one out is cheap.
    left: dict[asyncio.Future[T], None] = dict.fromkeys(todo)
    finished: asyncio.Queue[asyncio.Future[T] | None] = asyncio.Queue()

    def on_done(f: asyncio.Future[T]) -> None:
        if f in left:
            del left[f]
            finished.put_nowait(f)
            if not left and timer is not None:
                timer.cancel()

    def on_timeout() -> None:
        for f in left:
            f.remove_done_callback(on_done)
            finished.put_nowait(None)  # one for each result that will not come
        left.clear()

    async def next_result() -> T:
        f = await finished.get()
        if f is None:
            raise TimeoutError("workflow.as_completed() timed out")
        return f.result()

    timer = loop.call_later(seconds, on_timeout) if todo and seconds is not None else None
    for f in todo:
        f.add_done_callback(on_done)
    return (next_result() for _ in todo)
