"""A worker's activity flow limits: the claim its activity poller makes, within the queue's
limits (kept in the store, see ``perdure._store._flow``) and its own rate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable, Sequence
from typing import Any

from perdure._store import Store
from perdure._store._flow import burst
from perdure._store._types import ActivityTask, ClaimLimits, TaskKind

Claim = Callable[[str, str, str, Callable[[], int]], Coroutine[Any, Any, Sequence[Any]]]


def check_limits(
    max_task_queue_activities_per_second: float | None,
    max_activities_per_second: float | None,
    max_concurrent_activities_per_key: int | None,
) -> tuple[float | None, float | None, int | None]:
    """The limits, once checked."""
    for name, value in (
        ("max_task_queue_activities_per_second", max_task_queue_activities_per_second),
        ("max_activities_per_second", max_activities_per_second),
        ("max_concurrent_activities_per_key", max_concurrent_activities_per_key),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise ValueError(f"{name} must be a positive number, or None for no limit")
    per_key = max_concurrent_activities_per_key
    if per_key is not None and not isinstance(per_key, int):
        raise ValueError("max_concurrent_activities_per_key must be a whole number")
    return max_task_queue_activities_per_second, max_activities_per_second, per_key


class _LocalRate:
    """A token bucket for the worker's own activity rate (``max_activities_per_second``)."""

    def __init__(self, store: Store, rate: float) -> None:
        self._store = store
        self._rate = rate
        self._cap = burst(rate)
        self._tokens = self._cap
        self._at = store.clock.now()

    def available(self) -> int:
        now = self._store.clock.now()
        self._tokens = min(self._cap, self._tokens + max(now - self._at, 0.0) * self._rate)
        self._at = now
        return int(self._tokens)

    def take(self, n: int) -> None:
        self._tokens -= n


def activity_claim(
    store: Store,
    queue_rate: float | None,
    worker_rate: float | None,
    per_key: int | None,
) -> Claim:
    """How the activity poller claims, given the worker's limits."""
    limits = ClaimLimits(queue_rate, per_key) if queue_rate or per_key else None
    if limits is None and worker_rate is None:
        return store.claim_activity_tasks
    if (queue_rate or worker_rate) and store.clock.virtual:
        # The time-skipping clock stands still while tasks wait: the bucket would never
        # refill, and the test would hang.
        raise ValueError(
            "Activity rate limits follow the store's clock, which stands still in the "
            "time-skipping test environment while tasks wait: test a rate-limited worker "
            "with WorkflowEnvironment.start_local() (real time), or leave the rate out here"
        )
    local = _LocalRate(store, worker_rate) if worker_rate is not None else None
    rates = [r for r in (queue_rate, worker_rate) if r is not None]
    pacer = _Pacer(store, 1 / min(rates)) if rates else None

    async def claim(
        namespace: str, task_queue: str, owner: str, limit: Callable[[], int]
    ) -> list[ActivityTask]:
        def within() -> int:
            free = limit()
            return min(free, local.available()) if local is not None else free

        # Unpaced, the worker's own limit goes to the store, which trims its reservation to
        # what the claim took (``ClaimLimit.took``); a paced worker is handed nothing eagerly.
        budget = within if local is not None else limit
        tasks = await store.claim_activity_tasks(namespace, task_queue, owner, budget, limits)
        if local is not None:
            local.take(len(tasks))
        if pacer is not None:
            pacer.claimed(("queue", namespace, task_queue, TaskKind.ACTIVITY), len(tasks))
        return tasks

    return claim


class _Pacer:
    """Wakes a rate-limited poller when the next token is due. A claim that the rate held
    back looks like one that found the queue drained, and a poller then waits for a wake-up
    or its poll interval (a second on SQLite with the wake-up channel): too long for a rate
    of several a second. So while the queue gave tasks within the last second, the poller is
    woken again one token's time after each claim."""

    BUSY = 1.0

    def __init__(self, store: Store, pause: float) -> None:
        self._store = store
        self._pause = pause
        self._busy_until = 0.0
        self._pending: asyncio.TimerHandle | None = None

    def claimed(self, key: Hashable, n: int) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if n:
            self._busy_until = now + self.BUSY
        if now < self._busy_until and (self._pending is None or self._pending.cancelled()):
            self._pending = loop.call_later(self._pause, self._wake, key)

    def _wake(self, key: Hashable) -> None:
        self._pending = None
        self._store.notifier.fire([key])
