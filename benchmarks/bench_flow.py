"""Flow control's cost on the store's hot path: queueing and claiming tasks.

Run it::

    python benchmarks/bench_flow.py                      # SQLite file
    python benchmarks/bench_flow.py --postgres postgresql://postgres@127.0.0.1/test
    python benchmarks/bench_flow.py --fair               # every task of a fairness key

Starts N workflows (their first workflow task queued) in groups of 100 started together,
then claims the tasks one at a time (a worker with one free slot), and prints the time per
start and per claim (wall time, and this process's CPU time: on SQLite that includes the
database's own work, not the waits for fsync), medians of ``--runs``. Without ``--fair``
it uses only what every version of perdure has (no priority), so the same script measures
the code before flow control (``PYTHONPATH=<old checkout>/src``) and after it, with
priorities present but unused; ``--fair`` gives each task one of 10 fairness keys (the
stride-scheduling pass computed on insert).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from typing import Any

import perdure
from perdure._common.clock import VirtualClock
from perdure._store import open_store
from perdure._store._types import StartWorkflowRequest


def _request(i: int, fair: bool) -> StartWorkflowRequest:
    extra: dict[str, Any] = {}
    if fair:
        extra["priority"] = {"fairness_key": f"tenant-{i % 10}"}
    return StartWorkflowRequest(
        namespace="default",
        workflow_id=f"wf-{i}",
        workflow_type="W",
        task_queue="q",
        input=[],
        run_id=str(uuid.uuid4()),
        **extra,
    )


async def one_run(url: str, n: int, fair: bool) -> tuple[float, float, float, float]:
    store = open_store(url, VirtualClock(1_000_000.0))
    try:
        await store.closed_among(["x"])  # opens (and migrates) the database
        t0, p0 = time.perf_counter(), time.process_time()
        for i in range(0, n, 100):
            await asyncio.gather(
                *(store.start_workflow(_request(j, fair)) for j in range(i, min(i + 100, n)))
            )
        t1, p1 = time.perf_counter(), time.process_time()
        claimed = 0
        while await store.claim_workflow_tasks("default", "q", "w", 1):
            claimed += 1
        t2, p2 = time.perf_counter(), time.process_time()
        assert claimed == n, claimed
        return (t1 - t0) / n, (t2 - t1) / n, (p1 - p0) / n, (p2 - p1) / n
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fair", action="store_true")
    a = parser.parse_args()
    print(f"perdure {perdure.__file__}")
    rows: list[tuple[float, float, float, float]] = []
    for _ in range(a.runs):
        if a.postgres:
            import asyncpg  # type: ignore[import-untyped]

            schema = f"bench_flow_{uuid.uuid4().hex[:8]}"
            sep = "&" if "?" in a.postgres else "?"
            url = f"{a.postgres}{sep}schema={schema}"
            try:
                row = await one_run(url, a.n, a.fair)
            finally:
                conn = await asyncpg.connect(a.postgres.split("?")[0])
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.close()
        else:
            with tempfile.TemporaryDirectory() as d:
                row = await one_run(f"sqlite:///{d}/flow.db", a.n, a.fair)
        rows.append(row)
        print("  run: " + _line(row), flush=True)
    median = tuple(statistics.median(r[i] for r in rows) for i in range(4))
    print(f"median: {_line(median)} (per task, of {a.n} tasks, {a.runs} runs)")


def _line(row: tuple[float, ...]) -> str:
    start, claim, start_cpu, claim_cpu = (v * 1e6 for v in row)
    return (
        f"start {start:.0f} us (CPU {start_cpu:.0f} us), "
        f"claim {claim:.0f} us (CPU {claim_cpu:.0f} us)"
    )


if __name__ == "__main__":
    asyncio.run(main())
