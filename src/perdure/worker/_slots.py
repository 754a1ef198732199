"""A worker's task slots: how many tasks of one kind it runs at once, and the claim limit
that reserves them inside the claiming transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class Slots:
    """The tasks of one kind a worker runs at once: those its poller claimed and those handed
    to it eagerly (a slot is reserved for each before the transaction that leases it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflight: set[asyncio.Task[None]] = set()
        self.reserved = 0
        self.freed = asyncio.Event()

    def free(self) -> int:
        return self.limit - len(self.inflight) - self.reserved

    def claim_limit(self, cap: Callable[[], int | None] | None = None) -> ClaimLimit:
        return ClaimLimit(self, cap)

    def launch(self, coro: Coroutine[Any, Any, None]) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self.inflight.add(t)
        t.add_done_callback(self._done)

    def _done(self, t: asyncio.Task[None]) -> None:
        self.inflight.discard(t)
        self.freed.set()

    def release(self, n: int) -> None:
        self.reserved -= n
        if n:
            self.freed.set()


class ClaimLimit:
    """How many a poller's claim may take, decided inside its transaction (so that a task
    handed over eagerly earlier in the same batch is counted) and reserved there, trimmed to
    what it took (``took``), until the poller releases ``taken`` after the claim returns."""

    def __init__(self, slots: Slots, cap: Callable[[], int | None] | None = None) -> None:
        self._slots = slots
        self._cap = cap  # a further bound, if any (None from it: none)
        self.taken = 0  # the slots reserved now
        self.limit = 0  # the claim's limit (the queue is drained if it took fewer)

    def __call__(self) -> int:
        slots = self._slots
        slots.reserved -= self.taken  # the operation runs again: decide afresh
        self.taken = max(slots.free(), 0)
        bound = None if self._cap is None else self._cap()
        if bound is not None:
            self.taken = min(self.taken, bound)
        slots.reserved += self.taken
        self.limit = self.taken
        return self.taken

    def took(self, n: int) -> None:
        """Inside the same transaction, after the claim: keep only the ``n`` slots it took,
        so that the others are free for the operations after it in the commit batch (a task
        handed over eagerly there)."""
        slots = self._slots
        slots.reserved -= self.taken - n
        self.taken = n
