"""Crash injection: kill a worker at a chosen point and start a fresh one there, so a test can
check in milliseconds what happens when a real worker process dies at that point."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perdure.client._client import Client
from perdure.worker import Worker


@dataclass(frozen=True)
class CrashPoint:
    """Where the worker dies. Make one with a constructor:

    * :meth:`after_event`: right after a workflow task it completed brings a history to at
      least ``n`` events;
    * :meth:`before_activity_completes`: the activity ran (its side effects happened) but its
      result was never recorded: a fresh worker runs it again (at-least-once);
    * :meth:`after_activity_completes`: its result is recorded, and the worker dies before it
      goes on.

    ``workflow_id`` limits the point to one workflow; ``times`` crashes that many times (each
    time at the next matching point, on the fresh worker).
    """

    kind: str
    subject: Any
    workflow_id: str | None = None
    times: int = 1

    @staticmethod
    def after_event(n: int, *, workflow_id: str | None = None, times: int = 1) -> CrashPoint:
        if n < 1:
            raise ValueError("after_event: n counts history events and starts at 1")
        return CrashPoint("workflow_task_completed", n, workflow_id, times)

    @staticmethod
    def before_activity_completes(
        activity: str | Callable[..., Any], *, workflow_id: str | None = None, times: int = 1
    ) -> CrashPoint:
        return CrashPoint("before_activity_completes", _activity_name(activity), workflow_id, times)

    @staticmethod
    def after_activity_completes(
        activity: str | Callable[..., Any], *, workflow_id: str | None = None, times: int = 1
    ) -> CrashPoint:
        return CrashPoint("after_activity_completes", _activity_name(activity), workflow_id, times)

    def _matches(self, point: str, subject: Any, task: Any) -> bool:
        if point != self.kind:
            return False
        if self.workflow_id is not None and _workflow_id(task) != self.workflow_id:
            return False
        if point == "workflow_task_completed":
            return bool(subject >= self.subject)
        return bool(subject == self.subject)


def _activity_name(activity: str | Callable[..., Any]) -> str:
    if isinstance(activity, str):
        return activity
    from perdure.activity._definition import ActivityDefinition

    return ActivityDefinition.from_callable(activity).name


def _workflow_id(task: Any) -> str:
    token = getattr(task, "token", None)
    return str(token.workflow_id if token is not None else task.workflow_id)


class CrashingWorker:
    """A worker that dies at a :class:`CrashPoint` and is replaced by a fresh one, the way a
    supervisor restarts a killed worker process.

    The dead worker claims nothing more, its in-flight work is abandoned mid-step (whatever
    it would still report is refused as stale), and its leases are treated as run out at once,
    so the fresh worker picks the work up without waiting for lease timeouts: a workflow task
    is retried, an activity attempt times out (start-to-close) and is retried by its policy.
    The fresh worker starts with an empty cache, so it replays each workflow's history.

    Takes :class:`~perdure.worker.Worker`'s arguments.

    Example::

        point = CrashPoint.before_activity_completes(charge_card)
        async with CrashingWorker(env.client, crash_at=point, task_queue="q",
                                  workflows=[Order], activities=[charge_card, ship]) as worker:
            assert await env.client.execute_workflow(Order.run, order, id="o", task_queue="q")
        assert worker.crashes == 1
    """

    def __init__(self, client: Client, *, crash_at: CrashPoint, **worker_options: Any) -> None:
        self._client = client
        self._point = crash_at
        self._options = worker_options
        self.crashes = 0
        """How many times the worker died so far."""
        self._worker = self._new_worker()
        self._run: asyncio.Task[None] | None = None
        self._dead_runs: list[asyncio.Task[None]] = []

    @property
    def worker(self) -> Worker:
        """The worker alive now."""
        return self._worker

    def _new_worker(self) -> Worker:
        worker = Worker(self._client, **self._options)
        worker._set_crash_hook(self._hook)
        return worker

    async def _hook(self, point: str, subject: Any, task: Any) -> None:
        if self.crashes >= self._point.times or not self._point._matches(point, subject, task):
            return
        self.crashes += 1
        dead, dead_run = self._worker, self._run
        if dead_run is not None:
            self._dead_runs.append(dead_run)
        # The fresh worker polls before the dead one lets go, so the work it abandons is
        # taken at once (and a time-skipping clock never sees a moment with nobody polling).
        self._worker = self._new_worker()
        self._run = asyncio.get_running_loop().create_task(self._worker.run())
        await dead._die()
        raise asyncio.CancelledError  # this step dies with the worker

    async def __aenter__(self) -> CrashingWorker:
        self._run = asyncio.get_running_loop().create_task(self._worker.run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._worker.shutdown()
        await asyncio.gather(*self._dead_runs, return_exceptions=True)
        if self._run is not None:
            await asyncio.gather(self._run, return_exceptions=True)
