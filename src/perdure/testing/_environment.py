from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from perdure._common.backoff import Retry
from perdure._common.clock import Clock, VirtualClock
from perdure._store import Store, open_store
from perdure.client._client import Client
from perdure.converter import DataConverter
from perdure.worker._timers import timer_service

_REAL = Clock()
log = logging.getLogger("perdure.testing")


class _TimeSkipper:
    """Jumps a virtual clock to the next due time whenever the engine has nothing to do; while
    an activity runs, lets real time pass on it (see :meth:`_keep_pace`)."""

    def __init__(self, store: Store, clock: VirtualClock) -> None:
        self._store = store
        self._clock = clock
        # Retention runs as the clock moves, as it would in workers as real time passes.
        self.sweeper = timer_service(store).sweeper
        self._auto = 0
        self._sleeping = 0
        self._task: asyncio.Task[None] | None = None
        self._awaited: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def awaiting(self, run_id: str) -> Iterator[None]:
        self._awaited[run_id] += 1
        try:
            yield
        finally:
            self._awaited[run_id] -= 1
            if self._awaited[run_id] <= 0:
                del self._awaited[run_id]

    async def _result_ready(self) -> bool:
        """Whether a run a client waits for has closed (its waiter has yet to notice)."""
        return bool(self._awaited) and bool(await self._store.closed_among(list(self._awaited)))

    @contextlib.asynccontextmanager
    async def auto_skip(self) -> AsyncIterator[None]:
        self._auto += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._skip_loop())
        try:
            yield
        finally:
            self._auto -= 1

    async def wait_idle(self) -> None:
        """Return once no task is ready, held by a worker, or about to be written; the clock
        stands still again then."""
        store = self._store
        key = ("changed",)
        changed = store.notifier.listen(key)
        try:
            while True:
                changed.clear()
                for _ in range(5):
                    await asyncio.sleep(0)
                if await store.is_idle():
                    return
                if (self._auto > 0 or self._sleeping > 0) and await store.activity_running():
                    await self._keep_pace()
                else:
                    self._clock.stand_still()
                await _REAL.wait(changed, _REAL.now() + 0.01)
        finally:
            self._clock.stand_still()
            store.notifier.forget(key)

    async def _keep_pace(self) -> None:
        """An activity attempt runs, in real time, while someone waits for time to pass.

        As in Temporal's time-skipping server, real time passes on the clock then, so the
        attempt's timeouts (start-to-close, heartbeat, schedule-to-close) fire after their
        real duration. The clock owes that time, and pays it (following real time from then
        on) only once it would bring something due, or the attempt heartbeats: an attempt
        that ends sooner leaves the clock where it was, which keeps virtual times exact."""
        clock = self._clock
        if clock.following_real_time:
            return
        clock.owe_real_time()
        now = clock.now()
        nxt = await self._store.next_wakeup()
        if nxt is not None and now < nxt <= now + clock.owed():
            clock.catch_up()

    async def _skip_loop(self) -> None:
        key = ("changed",)
        # The flag wait_idle() clears before its last look: set again by any commit since,
        # which makes that look stale (a signal sent while the next wake-up was being read).
        changed = self._store.notifier.listen(key)
        retry = Retry(log, "Skipping time")
        try:
            while self._auto > 0 and not self._store.closed:
                try:
                    await self.wait_idle()
                    if self._auto <= 0:
                        return
                    nxt = await self._store.next_wakeup()
                    ready = await self._result_ready()
                except Exception as exc:
                    if self._store.closed:
                        return
                    await retry.pause(exc)
                    continue
                retry.recovered()
                # Checked again after the awaits: the wait may have ended meanwhile (the clock
                # must not move once nobody is waiting), or something may have changed.
                if (
                    nxt is not None
                    and nxt > self._clock.now()
                    and not ready
                    and self._auto > 0
                    and not changed.is_set()
                ):
                    self._clock.advance_to(nxt)
                    await self.sweeper.sweep_all()
                else:
                    await asyncio.sleep(0.001)
        finally:
            self._store.notifier.forget(key)

    async def close(self) -> None:
        """Stop skipping: the store is about to close."""
        self._auto = 0
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def sleep(self, seconds: float) -> None:
        self._sleeping += 1
        try:
            await self._sleep(seconds)
        finally:
            self._sleeping -= 1

    async def _sleep(self, seconds: float) -> None:
        target = self._clock.now() + seconds
        while True:
            await self.wait_idle()
            nxt = await self._store.next_wakeup()
            if nxt is None or nxt > target:
                self._clock.advance_to(target)
                await self.sweeper.sweep_all()
                await self.wait_idle()
                return
            self._clock.advance_to(max(nxt, self._clock.now()))
            await self.sweeper.sweep_all()


class WorkflowEnvironment:
    """The real engine in process, for tests.

    ``start_time_skipping()`` runs it on an in-memory store with a virtual clock that jumps to
    the next timer whenever every workflow is blocked, so a workflow that sleeps for 90 days
    finishes in milliseconds; while an activity runs, real time passes on it (its timeouts
    fire after their real duration). ``start_local()`` runs on real time.

    Example::

        async with await WorkflowEnvironment.start_time_skipping() as env:
            async with Worker(env.client, task_queue="q", workflows=[Reminder]):
                assert await env.client.execute_workflow(Reminder.run, id="r", task_queue="q")
    """

    def __init__(self, client: Client, skipper: _TimeSkipper | None) -> None:
        self._client = client
        self._skipper = skipper

    @staticmethod
    async def start_time_skipping(
        *,
        data_converter: DataConverter | None = None,
        namespace: str = "default",
        start_time: datetime | None = None,
        url: str | None = None,
        interceptors: Sequence[Any] = (),
    ) -> WorkflowEnvironment:
        """An environment on a virtual clock, starting at ``start_time`` (default: now).

        The store is an in-memory SQLite database unless ``url`` names another (a file, or a
        PostgreSQL schema of the test's own: the clock is this process's, so no other process
        may share that database). ``interceptors`` are the client's (as in Temporal), and its
        workers' for those that are worker interceptors too."""
        clock = VirtualClock(start_time.timestamp() if start_time else None)
        store = open_store(url or "sqlite://:memory:", clock)
        skipper = _TimeSkipper(store, clock)
        if data_converter is not None:
            skipper.sweeper.use(data_converter.external_storage, None)
        client = Client(
            store,
            namespace=namespace,
            data_converter=data_converter,
            time_skipper=skipper,
            interceptors=interceptors,
        )
        return WorkflowEnvironment(client, skipper)

    @staticmethod
    async def start_local(
        url: str | None = None,
        *,
        data_converter: DataConverter | None = None,
        namespace: str = "default",
        interceptors: Sequence[Any] = (),
    ) -> WorkflowEnvironment:
        """An environment on real time, on ``url`` (default: an in-memory database), its
        client with ``interceptors``."""
        store = open_store(url or "sqlite://:memory:", Clock())
        client = Client(
            store, namespace=namespace, data_converter=data_converter, interceptors=interceptors
        )
        return WorkflowEnvironment(client, None)

    @property
    def client(self) -> Client:
        return self._client

    @property
    def supports_time_skipping(self) -> bool:
        return self._skipper is not None

    async def sleep(self, duration: timedelta | float) -> None:
        """Let ``duration`` pass: instantly on the virtual clock (firing every timer due on
        the way, in order), really otherwise."""
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
        if self._skipper is not None:
            await self._skipper.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    async def get_current_time(self) -> datetime:
        return datetime.fromtimestamp(self._client.store.clock.now(), UTC)

    @contextlib.asynccontextmanager
    async def auto_time_skipping_disabled(self) -> AsyncIterator[None]:
        """Within this block, waiting on results does not move the virtual clock."""
        skipper, self._client._time_skipper = self._client._time_skipper, None
        try:
            yield
        finally:
            self._client._time_skipper = skipper

    async def shutdown(self) -> None:
        if self._skipper is not None:
            await self._skipper.close()
        await self._client.close()

    async def __aenter__(self) -> WorkflowEnvironment:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
