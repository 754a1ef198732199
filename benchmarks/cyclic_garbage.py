"""What the garbage collector is left to free, a workflow: N one-activity workflows (client and
worker in one process, SQLite FULL) run with the collector off and saving what it finds, then
the objects it found, by type, per workflow. Objects in a reference cycle outlive their use
until a collection, and every collection walks every object alive, so each one costs every
workflow in flight. A workflow instance is a cycle of its own (its event loop, tasks and
handlers), taken apart by its worker once its run has closed; a run evicted from the cache
(``CACHE`` below the workflows in flight) leaves its instance to the collector. It also prints
how many workflow instances were built (more than N: runs evicted from the cache,
``max_cached_workflows``, and rebuilt by replay).

    python benchmarks/cyclic_garbage.py 1000          # CACHE=4000 sets max_cached_workflows
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import sys
import tempfile
from datetime import timedelta
from typing import Any

from perdure import Client, Worker, activity, workflow
from perdure._runtime import WorkflowRunner


@activity.defn
async def noop(i: int) -> int:
    return i


@workflow.defn
class OneActivity:
    @workflow.run
    async def run(self, i: int) -> int:
        result: int = await workflow.execute_activity(
            noop, i, start_to_close_timeout=timedelta(seconds=60)
        )
        return result


def _name(o: Any) -> str:
    kind = type(o).__name__
    if kind in ("function", "coroutine"):
        return f"{kind} {o.__qualname__}"
    if kind == "method":
        return f"method {o.__func__.__qualname__}"
    return kind


async def main(n: int, cache: int) -> None:
    built = [0]
    init = WorkflowRunner.__init__

    def counting(self: WorkflowRunner, *args: Any, **kwargs: Any) -> None:
        built[0] += 1
        init(self, *args, **kwargs)

    WorkflowRunner.__init__ = counting  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        client = await Client.connect(f"sqlite:///{tmp}/bench.db")
        worker = Worker(
            client,
            task_queue="q",
            workflows=[OneActivity],
            activities=[noop],
            max_cached_workflows=cache,
        )
        async with worker:
            for i in range(20):  # warm up
                await client.execute_workflow(OneActivity.run, i, id=f"warm-{i}", task_queue="q")
            built[0] = 0
            gc.collect()
            gc.disable()
            gc.set_debug(gc.DEBUG_SAVEALL)
            handles = await asyncio.gather(
                *(
                    client.start_workflow(OneActivity.run, i, id=f"w-{i}", task_queue="q")
                    for i in range(n)
                )
            )
            results = await asyncio.gather(*(h.result() for h in handles))
            assert results == list(range(n))
            gc.collect()
            found = collections.Counter(_name(o) for o in gc.garbage)
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        await client.close()
    print(f"{n} workflows, max_cached_workflows={cache}: {built[0]} instances built")
    print(f"{sum(found.values()) / n:.1f} objects a workflow left to the garbage collector:")
    for name, count in found.most_common(30):
        print(f"  {count / n:6.2f}  {name}")


if __name__ == "__main__":
    asyncio.run(
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, int(os.environ.get("CACHE", "1000")))
    )
