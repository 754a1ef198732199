"""Core engine benchmark: throughput, latency and per-step cost on SQLite, in one process.

Run it::

    python benchmarks/bench_core.py              # full sizes, each scenario 3 times
    python benchmarks/bench_core.py --quick --runs 1
    python benchmarks/bench_core.py --only c     # one scenario (for profiling)

Scenarios (each on a fresh SQLite file with the store's default settings: WAL,
``synchronous=FULL``; a client and a worker with default limits share one event loop):

a. throughput: 2,000 workflows of one trivial async activity each, all started at once;
   workflows/s from the first start to the last result.
b. latency: start-to-result time of a workflow of 3 sequential activities, one workflow at a
   time (200 runs after 20 warm-up runs); p50 and p99.
c. per-step cost in a long workflow: one workflow of 2,000 sequential activities; each
   activity records ``time.perf_counter()``, and the mean gap between consecutive activities
   over steps 1-100 is compared with steps 1,901-2,000 (ratio last/first: history growth
   should not slow a workflow down).

Each scenario runs ``--runs`` times and the median is reported, next to its target.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import perdure
from perdure import Client, Worker, activity, workflow

TASK_QUEUE = "bench"
TIMEOUT = timedelta(seconds=60)

# ------------------------------------------------------------------------------------------
# Workflows and activities
# ------------------------------------------------------------------------------------------

# Timestamps written by ``timed_step`` (scenario c); one process, so a module list is enough.
STEP_TIMES: list[float] = []


@activity.defn
async def noop(i: int) -> int:
    return i


@activity.defn
async def timed_step(i: int) -> int:
    STEP_TIMES.append(time.perf_counter())
    return i


@workflow.defn
class OneActivity:
    @workflow.run
    async def run(self, i: int) -> int:
        result: int = await workflow.execute_activity(noop, i, start_to_close_timeout=TIMEOUT)
        return result


@workflow.defn
class ThreeActivities:
    @workflow.run
    async def run(self, i: int) -> int:
        for _ in range(3):
            i = await workflow.execute_activity(noop, i, start_to_close_timeout=TIMEOUT)
        return i


@workflow.defn
class ManySteps:
    @workflow.run
    async def run(self, steps: int) -> int:
        for i in range(steps):
            await workflow.execute_activity(timed_step, i, start_to_close_timeout=TIMEOUT)
        return steps


# Set by --no-guard: run workflow code without the determinism guard, to measure its cost.
GUARD = True


# A PostgreSQL server URL (--postgres): each scenario run then gets a fresh schema on it.
POSTGRES: str | None = None


@asynccontextmanager
async def engine() -> AsyncIterator[Client]:
    """A client and a running worker on a fresh database (a temporary SQLite file, or a new
    PostgreSQL schema with --postgres), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="perdure-bench-") as tmp:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        if POSTGRES is None:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:
            url = f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}schema={schema}"
        client = await Client.connect(url)
        try:
            async with Worker(
                client,
                task_queue=TASK_QUEUE,
                workflows=[OneActivity, ThreeActivities, ManySteps],
                activities=[noop, timed_step],
                deterministic_guard=GUARD,
            ):
                yield client
        finally:
            await client.close()
            if POSTGRES is not None:
                await _drop_schema(schema)


async def _drop_schema(schema: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    assert POSTGRES is not None
    conn = await asyncpg.connect(POSTGRES.split("?", 1)[0])
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    throughput_workflows: int
    latency_warmup: int
    latency_runs: int
    long_steps: int
    window: int


FULL = Sizes(
    throughput_workflows=2000, latency_warmup=20, latency_runs=200, long_steps=2000, window=100
)
QUICK = Sizes(
    throughput_workflows=200, latency_warmup=5, latency_runs=30, long_steps=300, window=50
)


async def throughput(sizes: Sizes) -> dict[str, float]:
    n = sizes.throughput_workflows
    async with engine() as client:
        t0 = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(OneActivity.run, i, id=f"a-{i}", task_queue=TASK_QUEUE)
                for i in range(n)
            )
        )
        results = await asyncio.gather(*(h.result() for h in handles))
        elapsed = time.perf_counter() - t0
    if results != list(range(n)):
        raise RuntimeError("throughput: wrong results")
    return {"workflows/s": n / elapsed, "seconds": elapsed}


async def latency(sizes: Sizes) -> dict[str, float]:
    samples = []
    async with engine() as client:
        for i in range(sizes.latency_warmup + sizes.latency_runs):
            t0 = time.perf_counter()
            result = await client.execute_workflow(
                ThreeActivities.run, i, id=f"b-{i}", task_queue=TASK_QUEUE
            )
            if i >= sizes.latency_warmup:
                samples.append(time.perf_counter() - t0)
            if result != i:
                raise RuntimeError("latency: wrong result")
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50 ms": cuts[49] * 1000, "p99 ms": cuts[98] * 1000}


async def long_workflow(sizes: Sizes) -> dict[str, float]:
    n, w = sizes.long_steps, sizes.window
    STEP_TIMES.clear()
    async with engine() as client:
        await client.execute_workflow(ManySteps.run, n, id="c", task_queue=TASK_QUEUE)
    if len(STEP_TIMES) != n:
        raise RuntimeError(f"long workflow: {len(STEP_TIMES)} steps ran, expected {n}")
    # The gap before step k is the cost of step k: the previous activity's completion, the
    # workflow task that schedules the next, and the next activity's start.
    first = (STEP_TIMES[w - 1] - STEP_TIMES[0]) / (w - 1)
    last = (STEP_TIMES[n - 1] - STEP_TIMES[n - w]) / (w - 1)
    return {"first ms": first * 1000, "last ms": last * 1000, "ratio": last / first}


@dataclass(frozen=True)
class Scenario:
    key: str
    title: Callable[[Sizes], str]
    run: Callable[[Sizes], Awaitable[dict[str, float]]]
    headline: str  # the figure compared with the target
    target: str
    meets: Callable[[float], bool]


SCENARIOS = [
    Scenario(
        "a",
        lambda s: f"throughput, {s.throughput_workflows:,} one-activity workflows at once",
        throughput,
        "workflows/s",
        ">= 500/s",
        lambda v: v >= 500,
    ),
    Scenario(
        "b",
        lambda s: f"latency, 3-activity workflow, {s.latency_runs} sequential runs",
        latency,
        "p50 ms",
        "p50 <= 10 ms",
        lambda v: v <= 10,
    ),
    Scenario(
        "c",
        lambda s: (
            f"per-step cost, one {s.long_steps:,}-activity workflow, steps 1-{s.window} vs "
            f"{s.long_steps - s.window + 1:,}-{s.long_steps:,}"
        ),
        long_workflow,
        "ratio",
        "ratio <= 1.2",
        lambda v: v <= 1.2,
    ),
]


# ------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}\n"
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"SQLite {sqlite3.sqlite_version}, perdure {perdure.__version__}"
    )


def commit_cost_ms(samples: int = 100) -> float:
    """Median time of one small SQLite commit with the store's settings: the floor under
    every durable step (it varies a lot between disks, and with other load on the disk)."""
    with tempfile.TemporaryDirectory(prefix="perdure-bench-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "fsync.db", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE t (x INTEGER)")
            times = []
            for i in range(samples):
                t0 = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t VALUES (?)", (i,))
                conn.execute("COMMIT")
                times.append(time.perf_counter() - t0)
        finally:
            conn.close()
    return statistics.median(times) * 1000


def fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:,.2f}" for k, v in values.items())


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


async def main(args: argparse.Namespace) -> int:
    global GUARD, POSTGRES
    GUARD = not args.no_guard
    POSTGRES = args.postgres
    sizes = QUICK if args.quick else FULL
    print(machine_info())
    if POSTGRES is None:
        store = (
            "store: SQLite file, default settings (WAL, synchronous=FULL); one commit here "
            f"takes {commit_cost_ms():.2f} ms (median)"
        )
    else:
        store = f"store: PostgreSQL at {POSTGRES.split('@')[-1]}, a fresh schema per run"
    print(
        f"{store}\nruns per scenario: {args.runs}; determinism guard: {'on' if GUARD else 'OFF'}\n"
    )
    for scenario in SCENARIOS:
        if args.only and scenario.key not in args.only:
            continue
        print(f"({scenario.key}) {scenario.title(sizes)}", flush=True)
        runs = []
        for i in range(args.runs):
            result = await scenario.run(sizes)
            runs.append(result)
            print(f"    run {i + 1}: {fmt(result)}", flush=True)
        med = median_of(runs)
        verdict = "ok" if scenario.meets(med[scenario.headline]) else "MISSED"
        print(f"    median: {fmt(med)}   [target {scenario.target}: {verdict}]\n", flush=True)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="perdure core benchmark (one process; SQLite, or PostgreSQL with --postgres)"
    )
    parser.add_argument("--runs", type=int, default=3, help="repeat each scenario N times")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only", default="", help="run only these scenarios, e.g. 'a' or 'ac' (default: all)"
    )
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help="run on this PostgreSQL server (e.g. postgresql://postgres@127.0.0.1/test) "
        "instead of a SQLite file",
    )
    parser.add_argument(
        "--no-guard",
        action="store_true",
        help="turn the workflow determinism guard off (to measure what it costs)",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(asyncio.run(main(parse_args())))
