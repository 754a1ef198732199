"""The timer service: fires due timers and acts on passed deadlines (activity timeouts,
expired leases, delayed tasks), one per store in a process, shared by its workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref

from perdure._common.backoff import Retry
from perdure._store import Store
from perdure._store._notify import Flag

log = logging.getLogger("perdure.worker")

# Bounded fallback for timers set by other processes (in-process ones wake it at once).
TIMER_POLL_INTERVAL = 1.0


class TimerService:
    """Fires due timers and acts on passed deadlines for one store; shared by the workers
    of a process that use the same store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.users = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = Flag()
        self._target: float | None = None

    def start(self) -> None:
        self.users += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="perdure.timers")

    async def stop(self) -> None:
        self.users -= 1
        if self.users == 0 and self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

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
