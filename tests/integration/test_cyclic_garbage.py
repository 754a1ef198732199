"""The hot path leaves nothing for the garbage collector to free but the workflow instances
themselves: a start's and an outcome's eager tickets, and an activity attempt, are freed by
reference counting as soon as they are done (each collection walks every object alive, so
garbage that waits for one costs every workflow in flight; benchmarks/peers S1)."""

from __future__ import annotations

import collections
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from perdure import Worker, activity, workflow
from perdure.testing import WorkflowEnvironment


@activity.defn
async def echo(i: int) -> int:
    return i


@workflow.defn
class OneActivity:
    @workflow.run
    async def run(self, i: int) -> int:
        return await workflow.execute_activity(
            echo, i, start_to_close_timeout=timedelta(seconds=30)
        )


@contextmanager
def cyclic_garbage() -> Iterator[collections.Counter[str]]:
    """The type names of the objects only the collector could free, made inside the block."""
    found: collections.Counter[str] = collections.Counter()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.update(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_eager_tickets_and_attempts_are_freed_without_the_collector(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[OneActivity], activities=[echo]):
        await env.client.execute_workflow(OneActivity.run, -1, id="warm", task_queue="q")
        with cyclic_garbage() as garbage:
            for i in range(20):
                assert (
                    await env.client.execute_workflow(
                        OneActivity.run, i, id=f"w{i}", task_queue="q"
                    )
                    == i
                )
    # Each workflow instance is a cycle (its event loop, tasks and handlers): the collector
    # found those, so it would have found the others.
    assert garbage["WorkflowInstance"] >= 20
    leftover = {
        name: garbage[name]
        for name in ("_Ticket", "_Reservation", "_InCommit", "WorkflowTaskOffer", "_Attempt")
        if garbage[name]
    }
    assert leftover == {}
