"""The workflow tasks a worker holds, and the one loop that renews their leases."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from perdure._errors import PerdureError
from perdure._store import Store
from perdure._store._types import WorkflowTask

log = logging.getLogger("perdure.worker")

# How long the loop sleeps at most while it holds tasks (a task held later with a shorter
# lease than the others is seen within this), and waits after a failed renewal.
RECHECK_SECONDS = 1.0


@dataclass(slots=True)
class _Held:
    task: WorkflowTask
    renewed: float  # time.monotonic() when the lease was taken or last renewed
    lost: bool = False  # the store said the worker no longer holds it

    @property
    def due(self) -> float:
        """When to renew: half the lease after it was taken or renewed."""
        return self.renewed + max(self.task.lease_seconds / 2, 0.05)


class HeldTasks:
    """The workflow tasks this worker holds: claimed or handed to it, not yet recorded.

    A worker can hold a task for longer than its lease without being lost: a batch claimed
    at once waits for the CPU under overload, or a task runs its local activities. Their
    leases are renewed together, in one transaction, half a lease after each was taken or
    last renewed, so that another worker takes a task over only when this one is gone (its
    process dead, its event loop blocked), never because it is busy. A task done in less
    than half its lease, as nearly all are, costs the store nothing here.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._held: dict[int, _Held] = {}
        self._changed = asyncio.Event()

    def hold(self, task: WorkflowTask) -> None:
        """Hold ``task`` (its lease renewed) until :meth:`release`."""
        self._held[task.task_id] = _Held(task, time.monotonic())
        if len(self._held) == 1:
            self._changed.set()

    def release(self, task: WorkflowTask) -> None:
        held = self._held.get(task.task_id)
        if held is not None and held.task is task:
            del self._held[task.task_id]

    async def run(self) -> None:
        """Renew the leases of held tasks as they come due, until cancelled or the store is
        closed."""
        while not self._store.closed:
            if not self._held:
                self._changed.clear()
                await self._changed.wait()
                continue
            now = time.monotonic()
            live = [h for h in self._held.values() if not h.lost]
            due = [h for h in live if h.due <= now]
            if due:
                await self._renew(due)
                continue
            nearest = min((h.due for h in live), default=now + RECHECK_SECONDS)
            await asyncio.sleep(min(nearest - now, RECHECK_SECONDS))

    async def _renew(self, due: list[_Held]) -> None:
        started = time.monotonic()
        try:
            lost = await self._store.extend_workflow_tasks([h.task for h in due])
        except PerdureError as exc:
            if self._store.closed:
                return  # the loop stops (the worker stops too)
            # Half of each lease is left: they stay due, and are tried again shortly.
            log.warning("Renewing the leases of %d workflow tasks failed: %s", len(due), exc)
            await asyncio.sleep(RECHECK_SECONDS)
            return
        gone = {t.task_id for t in lost}
        for h in due:
            if h.task.task_id in gone:
                h.lost = True  # its completion will be refused as stale
            else:
                h.renewed = started
