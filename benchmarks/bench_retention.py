"""Retention under load: benchmark S1 (bench_core's throughput scenario, one-activity
workflows started at once) on an empty database, on one that also holds ``--closed`` closed
workflows (100,000 by default), and on that one while the retention sweep deletes them.
Prints the three, the ratio of the last two (medians of ``--runs``, interleaved), and how
long each deleting transaction held SQLite's write lock.

    python benchmarks/bench_retention.py [--closed 100000] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_core

from perdure._common.events import EventType, HistoryEvent
from perdure._common.status import WorkflowExecutionStatus
from perdure._store._types import Execution, NamespaceRow
from perdure.client import Client
from perdure.worker._timers import timer_service

DAY = 86400.0


async def seed(client: Client, n: int) -> None:
    """``n`` completed one-activity workflows, closed two days ago (5 events each)."""
    store = client.store
    closed = store.clock.now() - 2 * DAY
    for start in range(0, n, 2000):

        async def op(tx: object, fx: object, start: int = start) -> None:
            for i in range(start, min(start + 2000, n)):
                run_id = f"old-{i}"
                ex = Execution(
                    run_id=run_id,
                    namespace="default",
                    workflow_id=run_id,
                    workflow_type="OneActivity",
                    task_queue="old",
                    status=WorkflowExecutionStatus.COMPLETED,
                    next_event_id=6,
                    start_time=closed - 1,
                    task_timeout=10.0,
                    close_time=closed,
                    first_run_id=run_id,
                )
                await tx.insert_execution(ex)  # type: ignore[attr-defined]
                events = [
                    HistoryEvent(1, EventType.WORKFLOW_EXECUTION_STARTED, closed - 1, {"i": i}),
                    HistoryEvent(2, EventType.WORKFLOW_TASK_COMPLETED, closed - 1, {}),
                    HistoryEvent(3, EventType.ACTIVITY_TASK_SCHEDULED, closed - 1, {"seq": 1}),
                    HistoryEvent(4, EventType.ACTIVITY_TASK_COMPLETED, closed, {"seq": 1}),
                    HistoryEvent(5, EventType.WORKFLOW_EXECUTION_COMPLETED, closed, {}),
                ]
                await tx.append_events(run_id, events)  # type: ignore[attr-defined]

        await store.transact(op)  # type: ignore[arg-type]


async def s1(sizes: bench_core.Sizes, closed: int, retention: bool) -> dict[str, float]:
    """bench_core's S1 workload; on a database that also holds ``closed`` closed runs, which
    with ``retention`` a paced sweep (what a worker does with a backlog) deletes meanwhile."""
    n = sizes.throughput_workflows
    async with bench_core.engine() as client:
        # The workers' own sweeper: their timer service may start a round too, and the
        # stats count both.
        sweeper = timer_service(client.store).sweeper
        sweeping = None
        if closed:
            await seed(client, closed)
        if retention:
            await client.store.update_namespace(NamespaceRow("default", retention=DAY))

            async def sweep() -> None:
                while await sweeper.sweep_paced():
                    pass

            sweeping = asyncio.ensure_future(sweep())
            await asyncio.sleep(0.5)  # S1 starts while the sweep is under way
        t0 = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    bench_core.OneActivity.run, i, id=f"a-{i}", task_queue=bench_core.TASK_QUEUE
                )
                for i in range(n)
            )
        )
        results = await asyncio.gather(*(h.result() for h in handles))
        elapsed = time.perf_counter() - t0
        deleted_during = sweeper.stats.deleted
        if sweeping is not None:
            await sweeping
    if results != list(range(n)):
        raise RuntimeError("S1: wrong results")
    locks = sweeper.stats.batch_seconds or [0.0]
    reclaims = sweeper.stats.reclaim_seconds or [0.0]
    return {
        "workflows/s": n / elapsed,
        "deleted during S1": deleted_during,
        "deleted": sweeper.stats.deleted,
        "lock ms max": max(locks) * 1000,
        "lock ms median": statistics.median(locks) * 1000,
        "reclaim ms max": max(reclaims) * 1000,
        "reclaim ms median": statistics.median(reclaims) * 1000,
    }


async def main(args: argparse.Namespace) -> None:
    sizes = bench_core.QUICK if args.quick else bench_core.FULL
    empty, kept, swept = [], [], []
    for _ in range(args.runs):  # interleaved, so that the machine's load falls on all three
        empty.append(await s1(sizes, 0, retention=False))
        kept.append(await s1(sizes, args.closed, retention=False))
        swept.append(await s1(sizes, args.closed, retention=True))
    a, b, c = (statistics.median(r["workflows/s"] for r in rs) for rs in (empty, kept, swept))
    print(f"S1, {sizes.throughput_workflows:,} one-activity workflows (medians of {args.runs})")
    beside = f"beside {args.closed:,} closed runs, no retention"
    print(f"  {'on an empty database':<44} {a:8.0f} workflows/s")
    print(f"  {beside:<44} {b:8.0f} workflows/s")
    print(
        f"  {'while retention deletes those runs':<44} {c:8.0f} workflows/s   "
        f"ratio {c / b:.2f} (to the same database without deletion)"
    )
    for r in swept:
        print(
            f"  run: deleted {r['deleted']:.0f} ({r['deleted during S1']:.0f} during S1); "
            f"write lock per batch: median {r['lock ms median']:.1f} ms, max "
            f"{r['lock ms max']:.1f} ms; space reclaimed per batch: median "
            f"{r['reclaim ms median']:.1f} ms, max {r['reclaim ms max']:.1f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--closed", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args()))
