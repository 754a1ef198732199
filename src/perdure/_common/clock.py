"""Where perdure gets the time: the system clock, or a virtual one that tests move."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Waitable(Protocol):
    """A flag a clock can wait on (``perdure._store._notify.Flag``)."""

    def is_set(self) -> bool: ...

    def add_waiter(self, future: asyncio.Future[None]) -> None: ...

    def remove_waiter(self, future: asyncio.Future[None]) -> None: ...


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Clock:
    """The real clock (seconds since the epoch)."""

    virtual = False

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def wait(self, flag: Waitable, deadline: float) -> None:
        """Wait until ``flag`` is set or the clock reaches ``deadline``."""
        delay = deadline - self.now()
        if delay <= 0 or flag.is_set():
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        flag.add_waiter(future)
        timer = loop.call_later(delay, _resolve, future)
        try:
            await future
        finally:
            timer.cancel()
            flag.remove_waiter(future)


class VirtualClock(Clock):
    """A clock that stands still until :meth:`advance_to` moves it.

    Waiters on virtual deadlines wake when the clock passes them; real-time waits are
    bounded by ``real_poll`` so changes in other processes are still seen.
    """

    virtual = True

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def now(self) -> float:
        return self._now

    def advance_to(self, when: float) -> None:
        if when <= self._now:
            return
        self._now = when
        while self._waiters and self._waiters[0][0] <= when:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (deadline, next(self._counter), future))
        await future

    async def wait(self, flag: Waitable, deadline: float) -> None:
        if flag.is_set() or deadline <= self._now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        flag.add_waiter(future)
        heapq.heappush(self._waiters, (deadline, next(self._counter), future))
        try:
            await future
        finally:
            flag.remove_waiter(future)
