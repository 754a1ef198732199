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

    def catch_up(self) -> None:
        """Real time has passed for sure (an activity heartbeated): a clock that owes it
        moves now (see :class:`VirtualClock`). The real clock owes nothing."""

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
    """A clock that stands still until :meth:`advance_to` moves it; or that owes real time
    (:meth:`owe_real_time`), standing still while it counts what passes, until
    :meth:`catch_up` pays it and has it follow real time until :meth:`stand_still`.

    Waiters on virtual deadlines wake when the clock passes them: at once when it jumps, on
    a real-time alarm while it follows real time.
    """

    virtual = True

    def __init__(self, start: float | None = None) -> None:
        # (virtual time, the monotonic time it was read at, or None while standing still): one
        # attribute, so a reader on another thread never sees half of a change.
        self._base: tuple[float, float | None] = (time.time() if start is None else start, None)
        self._owed_since: float | None = None  # monotonic
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self._alarm: asyncio.TimerHandle | None = None

    def now(self) -> float:
        at, since = self._base
        return at if since is None else at + (time.monotonic() - since)

    @property
    def following_real_time(self) -> bool:
        return self._base[1] is not None

    def owe_real_time(self) -> None:
        """Count the real time that passes from now on, without moving: :meth:`catch_up`
        moves by it. (No-op while following real time or already owing.)"""
        if self._base[1] is None and self._owed_since is None:
            self._owed_since = time.monotonic()

    def owed(self) -> float:
        """The real time passed since :meth:`owe_real_time`, not yet caught up."""
        since = self._owed_since
        return 0.0 if since is None else time.monotonic() - since

    def catch_up(self) -> None:
        """Move forward by the real time owed, and follow real time from here on."""
        if self._owed_since is not None:
            self._base = (self._base[0] + self.owed(), time.monotonic())
            self._owed_since = None
            self._wake_due()
            self._set_alarm()

    def stand_still(self) -> None:
        """Stop following real time (keeping the time reached), and forget any owed."""
        self._owed_since = None
        if self._base[1] is not None:
            self._base = (self.now(), None)
            self._wake_due()
            self._set_alarm()

    def advance_to(self, when: float) -> None:
        if when <= self.now():
            return
        self._base = (when, None if self._base[1] is None else time.monotonic())
        self._wake_due()
        self._set_alarm()

    def _wake_due(self) -> None:
        now = self.now()
        while self._waiters and self._waiters[0][0] <= now:
            _, _, future = heapq.heappop(self._waiters)
            _resolve(future)

    def _set_alarm(self) -> None:
        """While following real time, ring when the first waiter's deadline comes."""
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None
        if self._base[1] is not None and self._waiters:
            loop = asyncio.get_running_loop()
            self._alarm = loop.call_later(self._waiters[0][0] - self.now(), self._ring)

    def _ring(self) -> None:
        self._alarm = None
        self._wake_due()
        self._set_alarm()

    def _add_waiter(self, deadline: float, future: asyncio.Future[None]) -> None:
        heapq.heappush(self._waiters, (deadline, next(self._counter), future))
        if self._base[1] is not None and self._waiters[0][2] is future:
            self._set_alarm()

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self.now():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._add_waiter(deadline, future)
        await future

    async def wait(self, flag: Waitable, deadline: float) -> None:
        if flag.is_set() or deadline <= self.now():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        flag.add_waiter(future)
        self._add_waiter(deadline, future)
        try:
            await future
        finally:
            flag.remove_waiter(future)
