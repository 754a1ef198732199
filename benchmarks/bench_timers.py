"""Timers at scale (issue 19's S4 in one process): N workflows each sleeping, start to all
done, with what the worker did for them.

Run it::

    nice -n 10 python benchmarks/bench_timers.py --workflows 10000 --runs 3
    nice -n 10 python benchmarks/bench_timers.py --cache 10000   # max_cached_workflows

Each run starts ``--workflows`` workflows sleeping ``--sleep`` seconds on a fresh SQLite file
(one client and one worker in this process, defaults but ``--cache``) and prints the seconds
until all finished, the process's CPU seconds and those of its full garbage collections
(generation 2, timed by ``gc.callbacks``), and counts: workflow tasks claimed by the
poller (the rest were handed over eagerly), history reads, and workflow instances built
(each beyond one per workflow is a replay after a cache miss). To compare two versions, run
each in turn in the same minutes (``PYTHONPATH=/tmp/before/src python benchmarks/...``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perdure import Client, workflow
from perdure.worker import Worker
from perdure.worker._workflow_worker import WorkflowTasks


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self, seconds: float) -> int:
        await workflow.sleep(seconds)
        return 0


def _count(counts: dict[str, int], key: str, obj: Any, name: str) -> None:
    original = getattr(obj, name)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        counts[key] += len(result) if key == "claimed" else 1
        return result

    setattr(obj, name, counted)


class CollectorTimer:
    """CPU seconds spent in full (generation 2) garbage collections, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._began = time.process_time()
        else:
            self.seconds += time.process_time() - self._began


async def one_run(n: int, sleep: float, cache: int) -> dict[str, float]:
    counts = {"claimed": 0, "history reads": 0, "instances": 0}
    collector = CollectorTimer()
    gc.callbacks.append(collector)
    new_runner = WorkflowTasks.new_runner

    def built(self: WorkflowTasks, *args: Any) -> Any:
        counts["instances"] += 1
        return new_runner(self, *args)

    WorkflowTasks.new_runner = built  # type: ignore[method-assign,assignment]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            client = await Client.connect(f"sqlite:///{Path(tmp) / 'timers.db'}")
            _count(counts, "claimed", client.store, "claim_workflow_tasks")
            _count(counts, "history reads", client.store, "get_history")
            async with Worker(
                client, task_queue="timers", workflows=[Sleeper], max_cached_workflows=cache
            ):
                cpu0, t0 = time.process_time(), time.perf_counter()
                handles = await asyncio.gather(
                    *(
                        client.start_workflow(Sleeper.run, sleep, id=f"t{i}", task_queue="timers")
                        for i in range(n)
                    )
                )
                await asyncio.gather(*(h.result() for h in handles))
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            await client.close()
    finally:
        WorkflowTasks.new_runner = new_runner  # type: ignore[method-assign]
        gc.callbacks.remove(collector)
    return {"s to all done": wall, "cpu s": cpu, "full gc cpu s": collector.seconds, **counts}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--sleep", type=float, default=2.0)
    parser.add_argument("--cache", type=int, default=1000, help="max_cached_workflows")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    rows = [asyncio.run(one_run(args.workflows, args.sleep, args.cache)) for _ in range(args.runs)]
    for key in rows[0]:
        values = [r[key] for r in rows]
        shown = ", ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in values)
        print(f"{key:>14}: {shown}  (median {statistics.median(values):.2f})")


if __name__ == "__main__":
    main()
