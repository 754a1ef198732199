"""Core engine benchmark: throughput, latency and per-step cost, on SQLite or PostgreSQL.

Run it::

    python benchmarks/bench_core.py              # full sizes, each scenario 3 times
    python benchmarks/bench_core.py --quick --runs 1
    python benchmarks/bench_core.py --only c     # one scenario (for profiling)
    python benchmarks/bench_core.py --postgres postgresql://postgres@127.0.0.1/test \
        --workers 0,1,2                          # PostgreSQL: in-process, 1 and 2 worker processes
    python benchmarks/bench_core.py --only a --workers 0,1,2   # the same on one SQLite file

Scenarios (each on a fresh SQLite file with the store's default settings: WAL,
``synchronous=FULL``, or with ``--postgres`` on a fresh schema dropped afterwards; by default
a client and a worker with default limits share one event loop):

a. throughput: 2,000 workflows of one trivial async activity each, all started at once;
   workflows/s from the first start to the last result.
b. latency: start-to-result time of a workflow of 3 sequential activities, one workflow at a
   time (200 runs after 20 warm-up runs); p50 and p99.
c. per-step cost in a long workflow: one workflow of 2,000 sequential activities; each
   activity records ``time.perf_counter()``, and the mean gap between consecutive activities
   over steps 1-100 is compared with steps 1,901-2,000 (ratio last/first: history growth
   should not slow a workflow down).
d. latency across processes: ``execute_workflow`` of a one-activity workflow from this
   process, run by a ``perdure worker`` process on the same database, one workflow at a time
   (200 runs after 2 warm-up runs); p50 and p95. On SQLite each run measures twice: with the
   wake-up channel between the processes, then with it off in both (polling only, as before
   it existed); then, for reference, the p50 of the same workflows run in process.

With ``--workers N`` the workers are N separate ``perdure worker`` processes on the same
schema or SQLite file (sharing its write lock), and this process only starts workflows and
waits for results, as in a deployment; 0 means the worker in this process. A comma list
(``0,1,2``) runs each setting and ends with a table of the medians side by side. Scenario
(a) runs for every setting; (b) and (c), which keep one workflow in flight, only with at most
one worker.

Each scenario runs ``--runs`` times and the median is reported, next to its target.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import signal
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


@activity.defn
async def noop(i: int) -> int:
    return i


@activity.defn
async def timed_step(i: int) -> float:
    # CLOCK_MONOTONIC: comparable across the processes of one machine.
    return time.perf_counter()


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
    async def run(self, steps: int) -> list[float]:
        times = []
        for i in range(steps):
            t: float = await workflow.execute_activity(
                timed_step, i, start_to_close_timeout=TIMEOUT
            )
            times.append(t)
        return times


# Set by --no-guard: run workflow code without the determinism guard, to measure its cost.
GUARD = True


# A PostgreSQL server URL (--postgres): each scenario run then gets a fresh schema on it.
POSTGRES: str | None = None


# Worker processes per run (--workers): 0 runs the worker in this process.
WORKERS = 0


@asynccontextmanager
async def engine() -> AsyncIterator[Client]:
    """A client and running workers on a fresh database (a temporary SQLite file, or a new
    PostgreSQL schema with --postgres), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="perdure-bench-") as tmp:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        if POSTGRES is None:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:
            url = f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}schema={schema}"
        deadlocks = await _deadlocks() if POSTGRES is not None else 0
        client = await Client.connect(url)
        try:
            if WORKERS:
                async with worker_processes(client, url, WORKERS):
                    yield client
            else:
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
                # The server counts a deadlock once its sessions end (they have, above).
                DEADLOCKS.append(await _deadlocks() - deadlocks)
                await _drop_schema(schema)


# Run in a worker process to turn the SQLite wake-up channel off (scenario d's "before").
NO_CHANNEL = "import perdure._store._wake as w; w.PeerChannel.open = lambda *a: None; "


@asynccontextmanager
async def worker_processes(
    client: Client, url: str, n: int, prelude: str = ""
) -> AsyncIterator[None]:
    """``n`` ``perdure worker`` processes running this module's workflows on ``url``, started
    and warmed up before the scenario's clock starts, stopped (SIGTERM) after it."""
    await client.count_workflows()  # create the schema here, before the workers race for it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    command = [sys.executable, "-c", prelude + "from perdure.cli import main; main()", "worker"]
    options = ["--db", url, "--task-queue", TASK_QUEUE, "--log-level", "WARNING", "bench_core"]
    procs = [
        await asyncio.create_subprocess_exec(
            *command, *options, env=env, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(n)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if b"running" not in line:
                raise RuntimeError(f"worker process did not start: {line!r}")
        for i in range(2 * n):  # every worker has connected and polled once
            await client.execute_workflow(OneActivity.run, i, id=f"warm-{i}", task_queue=TASK_QUEUE)
        yield
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# Deadlocks PostgreSQL detected during each engine's life (another session on the same
# database would add its own: run the benchmark on a quiet server).
DEADLOCKS: list[int] = []


async def _deadlocks() -> int:
    """Deadlocks detected in the benchmark's database so far."""
    import asyncpg  # type: ignore[import-untyped]

    assert POSTGRES is not None
    conn = await asyncpg.connect(POSTGRES.split("?", 1)[0])
    try:
        count = await conn.fetchval(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(count or 0)
    finally:
        await conn.close()


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
    cross_runs: int  # d (after 2 warm-up runs)


FULL = Sizes(
    throughput_workflows=2000,
    latency_warmup=20,
    latency_runs=200,
    long_steps=2000,
    window=100,
    cross_runs=200,
)
QUICK = Sizes(
    throughput_workflows=200,
    latency_warmup=5,
    latency_runs=30,
    long_steps=300,
    window=50,
    cross_runs=10,
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
    figures = {"workflows/s": n / elapsed, "seconds": elapsed}
    if POSTGRES is not None:
        figures["deadlocks"] = DEADLOCKS[-1]
    return figures


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
    async with engine() as client:
        times = await client.execute_workflow(ManySteps.run, n, id="c", task_queue=TASK_QUEUE)
    if len(times) != n:
        raise RuntimeError(f"long workflow: {len(times)} steps ran, expected {n}")
    # The gap before step k is the cost of step k: the previous activity's completion, the
    # workflow task that schedules the next, and the next activity's start.
    first = (times[w - 1] - times[0]) / (w - 1)
    last = (times[n - 1] - times[n - w]) / (w - 1)
    return {"first ms": first * 1000, "last ms": last * 1000, "ratio": last / first}


async def cross_process_once(sizes: Sizes, channel: bool) -> dict[str, float]:
    """Scenario d with the wake-up channel on or off (in both processes)."""
    from perdure._store import _wake

    samples = []
    opener = _wake.PeerChannel.open
    with tempfile.TemporaryDirectory(prefix="perdure-bench-") as tmp:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        if POSTGRES is None:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:
            url = f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}schema={schema}"
        if not channel:
            _wake.PeerChannel.open = lambda *a: None  # type: ignore[method-assign,assignment]
        try:
            client = await Client.connect(url)
        finally:
            _wake.PeerChannel.open = opener  # type: ignore[method-assign]
        try:
            async with worker_processes(client, url, 1, "" if channel else NO_CHANNEL):
                for i in range(2 + sizes.cross_runs):
                    t0 = time.perf_counter()
                    result = await client.execute_workflow(
                        OneActivity.run, i, id=f"d-{i}", task_queue=TASK_QUEUE
                    )
                    if i >= 2:
                        samples.append(time.perf_counter() - t0)
                    if result != i:
                        raise RuntimeError("cross-process latency: wrong result")
        finally:
            await client.close()
            if POSTGRES is not None:
                await _drop_schema(schema)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50 ms": cuts[49] * 1000, "p95 ms": cuts[94] * 1000}


async def in_process_one_activity(sizes: Sizes) -> float:
    """p50 of the same workflows with the worker in this process (the floor of d, which pays
    two more commits: the worker's claim, and its workflow task's completion)."""
    samples = []
    async with engine() as client:
        for i in range(2 + sizes.cross_runs):
            t0 = time.perf_counter()
            await client.execute_workflow(OneActivity.run, i, id=f"d-{i}", task_queue=TASK_QUEUE)
            if i >= 2:
                samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


async def cross_process(sizes: Sizes) -> dict[str, float]:
    figures = await cross_process_once(sizes, channel=True)
    if POSTGRES is None:  # PostgreSQL's wake-ups are its NOTIFY, always on
        before = await cross_process_once(sizes, channel=False)
        figures.update({f"polling {k}": v for k, v in before.items()})
    figures["in-process p50 ms"] = await in_process_one_activity(sizes)
    return figures


@dataclass(frozen=True)
class Scenario:
    key: str
    title: Callable[[Sizes], str]
    run: Callable[[Sizes], Awaitable[dict[str, float]]]
    headline: str  # the figure compared with the target
    target: str
    meets: Callable[[float], bool]
    one_workflow: bool = False  # keeps one workflow in flight: run with at most one worker
    own_worker: bool = False  # starts its own worker process: run in the in-process setting


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
        one_workflow=True,
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
        one_workflow=True,
    ),
    Scenario(
        "d",
        lambda s: (
            f"latency across processes, one-activity workflow, {s.cross_runs} sequential "
            "runs from this process to a perdure worker process"
        ),
        cross_process,
        "p50 ms",
        "p50 <= 5 ms",
        lambda v: v <= 5,
        one_workflow=True,
        own_worker=True,
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


def setting_name(workers: int) -> str:
    if workers == 0:
        return "worker in process"
    return f"{workers} worker process{'es' if workers > 1 else ''}"


async def main(args: argparse.Namespace) -> int:
    global GUARD, POSTGRES, WORKERS
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
        f"{store}\nruns per scenario: {args.runs}; determinism guard: {'on' if GUARD else 'OFF'}"
        + (" (in this process; worker processes keep it on)" if any(args.workers) else "")
        + "\n"
    )
    # (scenario key, setting) -> median headline figure
    table: dict[tuple[str, int], float] = {}
    for workers in args.workers:
        WORKERS = workers
        if len(args.workers) > 1 or workers:
            print(f"== {setting_name(workers)}\n")
        for scenario in SCENARIOS:
            if args.only and scenario.key not in args.only:
                continue
            if (scenario.one_workflow and workers > 1) or (scenario.own_worker and workers):
                continue
            print(f"({scenario.key}) {scenario.title(sizes)}", flush=True)
            runs = []
            for i in range(args.runs):
                result = await scenario.run(sizes)
                runs.append(result)
                print(f"    run {i + 1}: {fmt(result)}", flush=True)
            med = median_of(runs)
            table[scenario.key, workers] = med[scenario.headline]
            verdict = "ok" if scenario.meets(med[scenario.headline]) else "MISSED"
            print(f"    median: {fmt(med)}   [target {scenario.target}: {verdict}]\n", flush=True)
    if len(args.workers) > 1:
        print_table(table, args.workers)
    return 0


def print_table(table: dict[tuple[str, int], float], settings: list[int]) -> None:
    """The medians side by side: one row per scenario, one column per worker setting."""
    names = [setting_name(w) for w in settings]
    width = max(len(n) for n in names) + 2
    print("medians".ljust(20) + "".join(n.rjust(width) for n in names))
    for scenario in SCENARIOS:
        if not any((scenario.key, w) in table for w in settings):
            continue
        label = f"({scenario.key}) {scenario.headline}".ljust(20)
        cells = [
            f"{table[scenario.key, w]:,.2f}" if (scenario.key, w) in table else "-"
            for w in settings
        ]
        print(label + "".join(c.rjust(width) for c in cells))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="perdure core benchmark (SQLite, or PostgreSQL with --postgres)"
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
    parser.add_argument(
        "--workers",
        default="0",
        metavar="N[,N...]",
        help="run the workers as N separate processes on the database (0: in this process, "
        "the default); a comma list runs each setting and prints a table",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        args.workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error("--workers takes numbers, e.g. 1 or 0,1,2")
    if any(w < 0 for w in args.workers):
        parser.error("--workers must be 0 or more")
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(asyncio.run(main(parse_args())))
