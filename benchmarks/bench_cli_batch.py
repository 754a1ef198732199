"""How long ``perdure workflow terminate --query ... --yes`` takes on many workflows (issue
13's target: 10,000 workflows in under a minute on SQLite).

    python benchmarks/bench_cli_batch.py [--workflows 10000] [--runs 3] [--db URL]

Each run makes a fresh database (a SQLite file in a temporary directory unless ``--db`` names
an empty PostgreSQL schema), starts that many workflows (no worker: they stay open), then
times the batch command as a subprocess, the way a user runs it, and checks that every
workflow ended up terminated. Prints each run's seconds and workflows/s, then the median.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perdure import Client

PERDURE = str(Path(sys.executable).parent / "perdure")


async def fill(db: str, count: int) -> None:
    client = await Client.connect(db)
    try:
        for start in range(0, count, 500):
            await asyncio.gather(
                *(
                    client.start_workflow("Order", args=[i], id=f"order-{i}", task_queue="orders")
                    for i in range(start, min(count, start + 500))
                )
            )
    finally:
        await client.close()


async def terminated(db: str) -> int:
    client = await Client.connect(db)
    try:
        return (await client.count_workflows("ExecutionStatus = 'Terminated'")).count
    finally:
        await client.close()


def one_run(db: str, count: int) -> float:
    asyncio.run(fill(db, count))
    started = time.perf_counter()
    done = subprocess.run(
        [PERDURE, "workflow", "terminate", "--db", db, "--yes", "--reason", "bench",
         "-q", "ExecutionStatus = 'Running'"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the batch failed: {done.stdout}{done.stderr}")
    got = asyncio.run(terminated(db))
    if got != count:
        raise SystemExit(f"{got} of {count} workflows were terminated")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", default=None, help="an empty PostgreSQL schema's URL")
    args = parser.parse_args()
    print(
        f"perdure workflow terminate --query, {args.workflows:,} workflows, cores {os.cpu_count()}"
    )
    figures = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            db = args.db or f"sqlite:///{Path(tmp) / 'batch.db'}"
            if args.db and run:
                raise SystemExit("--db: one run per empty schema (give --runs 1)")
            seconds = one_run(db, args.workflows)
        figures.append(seconds)
        print(f"run {run + 1}: {seconds:.1f} s, {args.workflows / seconds:,.0f} workflows/s")
    median = statistics.median(figures)
    print(
        f"median: {median:.1f} s, {args.workflows / median:,.0f} workflows/s "
        "[target: 10,000 in under 60 s on SQLite]"
    )


if __name__ == "__main__":
    main()
