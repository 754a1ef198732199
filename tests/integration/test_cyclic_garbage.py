"""The hot path leaves nothing for the garbage collector to free: a start's and an outcome's
eager tickets, an activity attempt, and a closed run's workflow instance (disposed of by its
worker) are freed by reference counting as soon as they are done. Each collection walks every
object alive, so garbage that waits for one costs every workflow in flight (benchmarks/peers
S1, benchmarks/cyclic_garbage.py)."""

from __future__ import annotations

import collections
import gc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from perdure import Worker, activity, workflow
from perdure._runtime._instance import WorkflowInstance
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


# What the hot path makes for a workflow besides its instance; none may be left to the collector.
HOT_PATH = ("_Ticket", "_Reservation", "_InCommit", "WorkflowTaskOffer", "_Attempt")


@contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """The objects only the collector could free that became garbage inside the block (other
    tests' objects may be among them, in a process running several)."""
    found: list[object] = []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_workflows_leave_nothing_to_the_collector(env: WorkflowEnvironment) -> None:
    prefix = f"garbage-{uuid.uuid4().hex[:8]}-"
    async with Worker(env.client, task_queue="q", workflows=[OneActivity], activities=[echo]):
        await env.client.execute_workflow(OneActivity.run, -1, id="warm", task_queue="q")
        with cyclic_garbage() as garbage:
            for i in range(20):
                assert (
                    await env.client.execute_workflow(
                        OneActivity.run, i, id=f"{prefix}{i}", task_queue="q"
                    )
                    == i
                )
            # The control: a cycle made here is found, so anything the workflows left would be.
            control: list[object] = []
            control.append(control)
            control_id = id(control)
            del control
    assert any(id(o) == control_id for o in garbage)
    instances = [
        o.info().workflow_id
        for o in garbage
        if isinstance(o, WorkflowInstance) and o.info().workflow_id.startswith(prefix)
    ]
    assert instances == []
    assert (
        collections.Counter(type(o).__name__ for o in garbage if type(o).__name__ in HOT_PATH) == {}
    )
