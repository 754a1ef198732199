"""perdure's side of the peers benchmark: its public API only (``Client``, ``Worker``).

Variants:
- ``sqlite``: a fresh SQLite file with the store's defaults (WAL, ``synchronous=FULL``); a
  client and a worker with default limits share one event loop, as an embedded engine runs.
- ``postgres``: the same on a fresh schema of the PostgreSQL server (``$PERDURE_BENCH_POSTGRES``,
  default ``postgresql://postgres@127.0.0.1:5432/test``), dropped afterwards.
- ``postgres-2w``: S1 only, with two ``perdure worker`` processes on the schema and this
  process only starting workflows and waiting for results.

S7 (either database) runs the worker as one ``perdure worker`` process and the client here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from benchmarks.peers import common
from benchmarks.peers.common import NotApplicable, Result, Scale
from perdure import Client, Worker, activity, workflow

TASK_QUEUE = "peers"
TIMEOUT = timedelta(seconds=common.ACTIVITY_TIMEOUT_S)
POSTGRES = os.environ.get("PERDURE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

# ------------------------------------------------------------------------------------------
# Workflows and activities
# ------------------------------------------------------------------------------------------


@activity.defn
async def noop(i: int) -> int:
    return i


@activity.defn
async def timed_step(i: int) -> float:
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


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self, seconds: float) -> int:
        await workflow.sleep(seconds)
        return 0


@workflow.defn
class Recoverable:
    @workflow.run
    async def run(self, i: int) -> int:
        i = await workflow.execute_activity(noop, i, start_to_close_timeout=TIMEOUT)
        await workflow.sleep(common.S5_SLEEP_S)
        result: int = await workflow.execute_activity(noop, i, start_to_close_timeout=TIMEOUT)
        return result


@workflow.defn
class WaitsForSignal:
    def __init__(self) -> None:
        self.released = False

    @workflow.signal
    def release(self) -> None:
        self.released = True

    @workflow.run
    async def run(self, i: int) -> int:
        await workflow.wait_condition(lambda: self.released)
        return i


WORKFLOWS = [OneActivity, ThreeActivities, ManySteps, Sleeper, Recoverable, WaitsForSignal]
ACTIVITIES = [noop, timed_step]

# ------------------------------------------------------------------------------------------
# Databases and workers
# ------------------------------------------------------------------------------------------


@asynccontextmanager
async def database(variant: str) -> AsyncIterator[str]:
    """The URL of a fresh database for ``variant``, removed afterwards."""
    if variant == "sqlite":
        with tempfile.TemporaryDirectory(prefix="perdure-peers-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    import asyncpg  # type: ignore[import-untyped]

    schema = f"peers_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}schema={schema}"
    finally:
        conn = await asyncpg.connect(POSTGRES)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@asynccontextmanager
async def running(url: str) -> AsyncIterator[Client]:
    """A client and a worker with default limits in this process, on ``url``."""
    client = await Client.connect(url)
    async with Worker(client, task_queue=TASK_QUEUE, workflows=WORKFLOWS, activities=ACTIVITIES):
        yield client


@asynccontextmanager
async def engine(variant: str) -> AsyncIterator[Client]:
    async with database(variant) as url, running(url) as client:
        yield client


@asynccontextmanager
async def worker_processes(client: Client, url: str, n: int) -> AsyncIterator[None]:
    """``n`` ``perdure worker`` processes on ``url``, warmed up before the clock starts."""
    await client.count_workflows()  # the schema exists before the workers race to create it
    command = [sys.executable, "-c", "from perdure.cli import main; main()", "worker"]
    options = ["--db", url, "-q", TASK_QUEUE, "--log-level", "WARNING", __name__]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(common.ROOT), *sys.path])}
    procs = [
        await asyncio.create_subprocess_exec(
            *command, *options, env=env, cwd=common.ROOT, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(n)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if b"running" not in line:
                raise RuntimeError(f"perdure worker process did not start: {line!r}")
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


# ------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------


async def _throughput(client: Client, n: int) -> float:
    t0 = time.perf_counter()
    handles = await asyncio.gather(
        *(
            client.start_workflow(OneActivity.run, i, id=f"s1-{i}", task_queue=TASK_QUEUE)
            for i in range(n)
        )
    )
    results = await asyncio.gather(*(h.result() for h in handles))
    elapsed = time.perf_counter() - t0
    common.check_results("S1", results, range(n))
    return n / elapsed


async def s1(variant: str, scale: Scale) -> Result:
    n = scale.s1_workflows
    if variant == "postgres-2w":
        async with database("postgres") as url:
            client = await Client.connect(url)
            async with worker_processes(client, url, 2):
                return Result({"wf/s": await _throughput(client, n)})
    async with engine(variant) as client:
        return Result({"wf/s": await _throughput(client, n)})


def _single_worker_only(variant: str) -> None:
    if variant == "postgres-2w":
        raise NotApplicable("the 2-worker column measures S1 only")


async def s2(variant: str, scale: Scale) -> Result:
    _single_worker_only(variant)
    samples = []
    async with engine(variant) as client:
        for i in range(scale.s2_warmup + scale.s2_runs):
            t0 = time.perf_counter()
            result = await client.execute_workflow(
                ThreeActivities.run, i, id=f"s2-{i}", task_queue=TASK_QUEUE
            )
            if i >= scale.s2_warmup:
                samples.append(time.perf_counter() - t0)
            common.check_results("S2", [result], [i])
    return Result(common.percentiles_ms(samples))


async def s3(variant: str, scale: Scale) -> Result:
    _single_worker_only(variant)
    async with engine(variant) as client:
        times = await client.execute_workflow(
            ManySteps.run, scale.s3_steps, id="s3", task_queue=TASK_QUEUE
        )
    if len(times) != scale.s3_steps:
        raise RuntimeError(f"S3: {len(times)} steps ran, expected {scale.s3_steps}")
    return Result(common.step_costs(times, scale.s3_window))


async def s4(variant: str, scale: Scale) -> Result:
    _single_worker_only(variant)
    n = scale.s4_workflows
    async with engine(variant) as client:
        t0 = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    Sleeper.run, common.S4_SLEEP_S, id=f"s4-{i}", task_queue=TASK_QUEUE
                )
                for i in range(n)
            )
        )
        results = await asyncio.gather(*(h.result() for h in handles))
        elapsed = time.perf_counter() - t0
    common.check_results("S4", results, [0] * n)
    return Result({"s to all done": elapsed})


async def s5(variant: str, scale: Scale) -> Result:
    _single_worker_only(variant)
    async with database(variant) as url:
        result = await common.kill_and_recover(
            f"perdure-{variant}", url, scale.s5_workflows, scale.child_timeout_s
        )
    result.notes.append("leases: workflow task 10 s (default), activity 10 s (start-to-close)")
    return result


async def s5_worker(variant: str, phase: str, url: str, n: int) -> None:
    async with running(url) as client:
        if phase == "start":
            await asyncio.gather(
                *(
                    client.start_workflow(Recoverable.run, i, id=f"s5-{i}", task_queue=TASK_QUEUE)
                    for i in range(n)
                )
            )
            common.report_started()
            await asyncio.Event().wait()  # until killed
        results = await asyncio.gather(
            *(client.get_workflow_handle(f"s5-{i}").result() for i in range(n))
        )
        common.report_done()
        common.check_results("S5", results, range(n))


async def s6(variant: str, scale: Scale) -> Result:
    _single_worker_only(variant)
    n = scale.s6_workflows
    async with engine(variant) as client:
        t0 = time.perf_counter()

        async def start(i: int) -> object:
            return await client.start_workflow(
                WaitsForSignal.run, i, id=f"s6-{i}", task_queue=TASK_QUEUE
            )

        async def release(i: int) -> object:
            handle = client.get_workflow_handle(f"s6-{i}")
            await handle.signal(WaitsForSignal.release)
            return await handle.result()

        async def waiting(i: int) -> bool:
            # Started, then the first workflow task completed: the code waits on the signal.
            description = await client.get_workflow_handle(f"s6-{i}").describe()
            return description.history_length >= 2

        await common.bounded(start, n)
        await common.wait_until_all(waiting, n)
        results = await common.bounded(release, n)
        elapsed = time.perf_counter() - t0
    common.check_results("S6", results, range(n))
    return Result({"peak RSS MB": common.peak_rss_mb(), "s total": elapsed})


async def s7(variant: str, scale: Scale) -> Result:
    """A client in this process, a ``perdure worker`` process (the CLI) on the same database:
    the shape of a web app beside its worker."""
    _single_worker_only(variant)
    async with database(variant) as url:
        client = await Client.connect(url)
        try:
            async with worker_processes(client, url, 1):
                result = await common.sequential_latency(
                    lambda i: client.execute_workflow(
                        OneActivity.run, i, id=f"s7-{i}", task_queue=TASK_QUEUE
                    ),
                    scale.s2_warmup,
                    scale.s2_runs,
                )
        finally:
            await client.close()
    result.notes.append("perdure: the worker process is `perdure worker` (the CLI)")
    return result
