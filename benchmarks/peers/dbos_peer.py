"""DBOS Transact's side of the peers benchmark: async workflows and steps with its decorators,
run in this process on its event loop, and its own recovery (``DBOS.launch()`` resumes the
pending workflows of its executor).

Variants:
- ``sqlite``: a fresh SQLite file as the system database, switched to WAL before DBOS opens
  it, so it runs with perdure's settings (WAL, ``synchronous=FULL``, SQLite's default);
  DBOS itself would leave the rollback journal, which costs an fsync more per commit.
- ``postgres``: a fresh schema (``dbos_system_schema``) on the PostgreSQL server
  (``$PERDURE_BENCH_POSTGRES``), dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSConfig, SetWorkflowID

from benchmarks.peers import common
from benchmarks.peers.common import NotApplicable, Result, Scale

POSTGRES = os.environ.get("PERDURE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
# How long a workflow waits for its message before recv gives up (DBOS's default is 60 s).
RECV_TIMEOUT_S = 24 * 3600.0

# ------------------------------------------------------------------------------------------
# Workflows and steps
# ------------------------------------------------------------------------------------------


@DBOS.step()
async def noop(i: int) -> int:
    return i


@DBOS.step()
async def timed_step(i: int) -> float:
    return time.perf_counter()


@DBOS.workflow()
async def one_activity(i: int) -> int:
    return await noop(i)


@DBOS.workflow()
async def three_activities(i: int) -> int:
    for _ in range(3):
        i = await noop(i)
    return i


@DBOS.workflow()
async def many_steps(steps: int) -> list[float]:
    return [await timed_step(i) for i in range(steps)]


@DBOS.workflow()
async def sleeper(seconds: float) -> int:
    await DBOS.sleep_async(seconds)
    return 0


@DBOS.workflow()
async def recoverable(i: int) -> int:
    i = await noop(i)
    await DBOS.sleep_async(common.S5_SLEEP_S)
    return await noop(i)


@DBOS.workflow()
async def waits_for_signal(i: int) -> int:
    await DBOS.recv_async("release", timeout_seconds=RECV_TIMEOUT_S)
    return i


# ------------------------------------------------------------------------------------------
# Databases and DBOS
# ------------------------------------------------------------------------------------------


@asynccontextmanager
async def database(variant: str) -> AsyncIterator[str]:
    """A fresh system database for ``variant`` (``URL`` or ``URL#schema``), removed after."""
    if variant == "sqlite":
        with tempfile.TemporaryDirectory(prefix="perdure-peers-dbos-") as tmp:
            path = Path(tmp) / "dbos.sqlite"
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: DBOS's connections keep it
            conn.close()
            yield f"sqlite:///{path}"
        return
    if variant != "postgres":
        raise NotApplicable(f"unknown variant {variant}")
    import asyncpg  # type: ignore[import-untyped]

    schema = f"peers_dbos_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{POSTGRES}#{schema}"
    finally:
        conn = await asyncpg.connect(POSTGRES)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@contextmanager
def launched(target: str) -> Iterator[None]:
    """DBOS configured on ``target`` and launched in this process (recovering the pending
    workflows it finds there), destroyed on exit."""
    url, _, schema = target.partition("#")
    config: DBOSConfig = {
        "name": "perdure-peers",
        "system_database_url": url,
        "log_level": "WARNING",
    }
    if schema:
        config["dbos_system_schema"] = schema
    DBOS(config=config)
    DBOS.launch()
    try:
        yield
    finally:
        DBOS.destroy()


@asynccontextmanager
async def engine(variant: str) -> AsyncIterator[None]:
    async with database(variant) as target:
        with launched(target):
            yield


async def start(workflow_id: str, func: Any, arg: Any) -> Any:
    with SetWorkflowID(workflow_id):
        return await DBOS.start_workflow_async(func, arg)


# ------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------


async def s1(variant: str, scale: Scale) -> Result:
    n = scale.s1_workflows
    async with engine(variant):
        t0 = time.perf_counter()
        handles = await asyncio.gather(*(start(f"s1-{i}", one_activity, i) for i in range(n)))
        results = await asyncio.gather(*(h.get_result() for h in handles))
        elapsed = time.perf_counter() - t0
    common.check_results("S1", results, range(n))
    return Result({"wf/s": n / elapsed})


async def s2(variant: str, scale: Scale) -> Result:
    samples = []
    async with engine(variant):
        for i in range(scale.s2_warmup + scale.s2_runs):
            t0 = time.perf_counter()
            with SetWorkflowID(f"s2-{i}"):
                result = await three_activities(i)  # a workflow runs where it is called
            if i >= scale.s2_warmup:
                samples.append(time.perf_counter() - t0)
            common.check_results("S2", [result], [i])
    return Result(common.percentiles_ms(samples))


async def s3(variant: str, scale: Scale) -> Result:
    async with engine(variant):
        with SetWorkflowID("s3"):
            times = await many_steps(scale.s3_steps)
    if len(times) != scale.s3_steps:
        raise RuntimeError(f"S3: {len(times)} steps ran, expected {scale.s3_steps}")
    return Result(common.step_costs(times, scale.s3_window))


async def s4(variant: str, scale: Scale) -> Result:
    n = scale.s4_workflows
    async with engine(variant):
        t0 = time.perf_counter()
        handles = await asyncio.gather(
            *(start(f"s4-{i}", sleeper, common.S4_SLEEP_S) for i in range(n))
        )
        results = await asyncio.gather(*(h.get_result() for h in handles))
        elapsed = time.perf_counter() - t0
    common.check_results("S4", results, [0] * n)
    return Result({"s to all done": elapsed})


async def s5(variant: str, scale: Scale) -> Result:
    async with database(variant) as target:
        result = await common.kill_and_recover(
            f"dbos-{variant}", target, scale.s5_workflows, scale.child_timeout_s
        )
    result.notes.append("no lease: the new process, same executor id, recovers at launch")
    return result


async def s5_worker(variant: str, phase: str, target: str, n: int) -> None:
    with launched(target):
        if phase == "start":
            await common.bounded(lambda i: start(f"s5-{i}", recoverable, i), n)
            common.report_started()
            await asyncio.Event().wait()  # until killed

        async def result(i: int) -> object:
            handle = await DBOS.retrieve_workflow_async(f"s5-{i}")
            return await handle.get_result()

        results = await common.bounded(result, n)
        common.report_done()
        common.check_results("S5", results, range(n))


async def s6(variant: str, scale: Scale) -> Result:
    n = scale.s6_workflows
    async with engine(variant):
        t0 = time.perf_counter()
        handles = await common.bounded(lambda i: start(f"s6-{i}", waits_for_signal, i), n)

        async def waiting(i: int) -> bool:
            # recv has recorded its timeout (a durable sleep step): the workflow waits.
            steps = await DBOS.list_workflow_steps_async(f"s6-{i}", load_output=False)
            return len(steps) >= 1

        await common.wait_until_all(waiting, n)
        await common.bounded(lambda i: DBOS.send_async(f"s6-{i}", None, "release"), n)
        results = await common.bounded(lambda i: handles[i].get_result(), n)
        elapsed = time.perf_counter() - t0
    common.check_results("S6", results, range(n))
    return Result({"peak RSS MB": common.peak_rss_mb(), "s total": elapsed})


S7_QUEUE = "peers-s7"


async def s7(variant: str, scale: Scale) -> Result:
    """A ``DBOSClient`` in this process enqueues each workflow on a queue that a DBOS process
    of its own runs (DBOS's way to start work in another process), and awaits its result."""
    from dbos import DBOSClient, EnqueueOptions

    async with database(variant) as target, common.worker_process(f"dbos-{variant}", target):
        url, _, schema = target.partition("#")
        client = DBOSClient(system_database_url=url, dbos_system_schema=schema or "dbos")

        async def execute(i: int) -> object:
            options: EnqueueOptions = {
                "queue_name": S7_QUEUE,
                "workflow_name": one_activity.__qualname__,
                "workflow_id": f"s7-{i}",
            }
            handle = await client.enqueue_async(options, i)
            return await handle.get_result()

        try:
            result = await common.sequential_latency(execute, scale.s2_warmup, scale.s2_runs)
        finally:
            client.destroy()
    result.notes.append("dbos: DBOSClient.enqueue to a queue of default settings, run elsewhere")
    return result


async def s7_worker(variant: str, target: str) -> None:
    with launched(target):
        await DBOS.register_queue_async(S7_QUEUE)  # default settings: polled once a second
        common.report_ready()
        await asyncio.Event().wait()  # until SIGTERM
