"""The timer service: fires due timers and acts on passed deadlines (activity timeouts,
expired leases, delayed tasks), and runs the retention sweep (``_retention``); one per store
in a process, shared by its workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref

from perdure._common.backoff import Retry
from perdure._store import Store
from perdure._store._notify import Flag
from perdure.client._namespace import Archiver
from perdure.converter import ExternalStorage
from perdure.worker._retention import RetentionSweeper

log = logging.getLogger("perdure.worker")

# Bounded fallback for timers set by other processes (in-process ones wake it at once).
TIMER_POLL_INTERVAL = 1.0
# How often the retention sweep looks for closed runs to delete (store clock); through a
# backlog it paces itself (RetentionSweeper.sweep_paced).
SWEEP_INTERVAL = 60.0


class TimerService:
    """Fires due timers and acts on passed deadlines for one store; shared by the workers
    of a process that use the same store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.users = 0
        self._task: asyncio.Task[None] | None = None
        self._sweeping: asyncio.Task[None] | None = None
        self._wake = Flag()
        self._target: float | None = None
        self.sweeper = RetentionSweeper(store)

    def start(
        self, storage: ExternalStorage | None = None, archiver: Archiver | None = None
    ) -> None:
        """One more worker uses the service (its external storage's unreferenced blobs are
        deleted, and its archiver archives for the namespaces that name it)."""
        self.users += 1
        self.sweeper.use(storage, archiver)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._loop(), name="perdure.timers")
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = loop.create_task(self._sweep_loop(), name="perdure.retention")

    async def stop(self) -> None:
        self.users -= 1
        if self.users == 0:
            for task in (self._task, self._sweeping):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self._task = self._sweeping = None

    async def _sweep_loop(self) -> None:
        store = self.store
        retry = Retry(log, "Deleting closed workflows past their retention")
        never = Flag()
        while not store.closed:
            try:
                deleted = await self.sweeper.sweep_paced()
            except Exception as exc:
                if store.closed:
                    return
                await retry.pause(exc)
                continue
            retry.recovered()
            if not deleted:
                await store.clock.wait(never, store.clock.now() + SWEEP_INTERVAL)

    def _on_wake_at(self, when: float) -> None:
        if self._target is None or when < self._target:
            self._wake.set()

    async def _loop(self) -> None:
        store = self.store
        unsubscribe = store.notifier.on_wake_at(self._on_wake_at)
        retry = Retry(log, "Firing due timers")
        try:
            while not store.closed:
                self._wake.clear()
                try:
                    handled = await store.fire_due()
                    if handled >= 500:
                        continue
                    nxt = await store.next_wakeup()
                except Exception as exc:
                    if store.closed:
                        return
                    await retry.pause(exc)
                    continue
                retry.recovered()
                fallback = store.clock.now() + TIMER_POLL_INTERVAL
                self._target = fallback if nxt is None else min(nxt, fallback)
                await store.clock.wait(self._wake, self._target)
        finally:
            unsubscribe()


_services: weakref.WeakKeyDictionary[Store, TimerService] = weakref.WeakKeyDictionary()


def timer_service(store: Store) -> TimerService:
    """The timer service of ``store`` in this process."""
    service = _services.get(store)
    if service is None:
        service = _services[store] = TimerService(store)
    return service
