"""A workflow's event loop keeps its tasks for the stack trace query: the pending ones, oldest
first, while those done are dropped as the list grows (a long-lived workflow makes a task per
signal handler, without bound)."""

from __future__ import annotations

import asyncio
from typing import Any

from perdure._runtime._loop import DurableTimerHandle, WorkflowEventLoop


class Sink:
    def start_timer(self, delay: float, handle: DurableTimerHandle) -> None: ...

    def cancel_timer(self, handle: DurableTimerHandle) -> None: ...

    def on_unhandled_error(self, context: dict[str, Any]) -> None: ...


async def finish() -> None:
    return None


async def wait(future: asyncio.Future[None]) -> None:
    await future


def test_pending_tasks_stay_in_order_and_done_ones_are_dropped() -> None:
    loop = WorkflowEventLoop(Sink(), None)
    waiting = [loop.create_future() for _ in range(3)]
    kept = []
    for i in range(1_000):
        if i % 400 == 0:  # three tasks that wait, among 997 that finish at once
            kept.append(loop.create_task(wait(waiting[i // 400])))
        else:
            loop.create_task(finish())
        loop.run_ready()
    assert loop.pending_tasks() == kept
    assert len(loop._tasks) < 40  # not the thousand made
    for future in waiting:
        future.set_result(None)
    loop.run_ready()
    assert loop.pending_tasks() == []
