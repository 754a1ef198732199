"""What every system's module shares: the sizes of each scale, the result of a scenario, the
figures' arithmetic, and the kill-and-recover choreography of S5.

A system module (``perdure_peer``, ``temporal_peer``, ``dbos_peer``) defines one coroutine per
scenario, ``s1(variant, scale) ... s7(variant, scale)``, each returning a :class:`Result`,
``s5_worker(variant, phase, target, n)`` for the worker processes S5 kills and replaces, and
``s7_worker(variant, target)`` for the worker process S7's client talks to. The
runner calls them through ``child.py``, one fresh process per (system, scenario, run).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Every activity in every system gets this start-to-close timeout (S5: the time a dead
# worker's activity holds its lease before it is retried elsewhere).
ACTIVITY_TIMEOUT_S = 10.0
# What each S5 workflow sleeps between its two activities, durably.
S5_SLEEP_S = 1.0
# What each S4 workflow sleeps, durably.
S4_SLEEP_S = 2.0
# How long an S5 worker runs after it has started every workflow, before it is killed.
S5_KILL_AFTER_S = 0.5


@dataclass(frozen=True)
class Scale:
    s1_workflows: int
    s2_warmup: int
    s2_runs: int
    s3_steps: int
    s3_window: int
    s4_workflows: int
    s5_workflows: int
    s6_workflows: int
    child_timeout_s: float


SCALES = {
    "quick": Scale(
        s1_workflows=200,
        s2_warmup=5,
        s2_runs=30,
        s3_steps=200,
        s3_window=50,
        s4_workflows=200,
        s5_workflows=200,
        s6_workflows=200,
        child_timeout_s=300,
    ),
    # S1 and S2 as full; S3-S6 a fifth of full or less, so that every system gets through
    # all six three times in about an hour on two cores.
    "medium": Scale(
        s1_workflows=2_000,
        s2_warmup=20,
        s2_runs=200,
        s3_steps=2_000,
        s3_window=100,
        s4_workflows=2_000,
        s5_workflows=2_000,
        s6_workflows=2_000,
        child_timeout_s=3600,
    ),
    "full": Scale(
        s1_workflows=2_000,
        s2_warmup=20,
        s2_runs=200,
        s3_steps=10_000,
        s3_window=100,
        s4_workflows=10_000,
        s5_workflows=10_000,
        s6_workflows=100_000,
        child_timeout_s=3 * 3600,
    ),
}


@dataclass
class Result:
    """The figures of one scenario run, and notes for the reader (what was run differently)."""

    figures: dict[str, float]
    notes: list[str] = field(default_factory=list)


class NotApplicable(Exception):
    """This scenario cannot be run fairly on this system; the message says why."""


# ------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------


def percentiles_ms(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50 ms": cuts[49] * 1000, "p95 ms": cuts[94] * 1000, "p99 ms": cuts[98] * 1000}


def step_costs(times: list[float], window: int) -> dict[str, float]:
    """Mean gap between consecutive steps over the first and the last ``window`` steps."""
    n = len(times)
    first = (times[window - 1] - times[0]) / (window - 1)
    last = (times[n - 1] - times[n - window]) / (window - 1)
    return {"first ms": first * 1000, "last ms": last * 1000, "last/first": last / first}


def peak_rss_mb(pid: int | str = "self") -> float:
    """The peak resident set size of a process (``VmHWM``), in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


async def bounded(
    make: Callable[[int], Awaitable[object]], n: int, limit: int = 1000
) -> list[object]:
    """``make(i)`` for ``i`` in ``range(n)``, at most ``limit`` at a time, results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(i: int) -> object:
        async with gate:
            return await make(i)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def wait_until_all(ready: Callable[[int], Awaitable[bool]], n: int) -> None:
    """Poll ``ready(i)`` for every ``i`` in ``range(n)`` until each has been true once.

    Each round checks the pending ones in order, 200 at a time, and stops at the first batch
    with one not ready yet (the workflows were started in this order, so the rest are most
    likely not ready either): a round costs what is ready plus one batch, not all of ``n``.
    """
    pending = list(range(n))
    while pending:
        for start in range(0, len(pending), 200):
            batch = pending[start : start + 200]
            checks = await asyncio.gather(*(ready(i) for i in batch))
            late = [i for i, ok in zip(batch, checks, strict=True) if not ok]
            if late:
                pending = late + pending[start + 200 :]
                break
        else:
            pending = []
        if pending:
            await asyncio.sleep(0.2)


def check_results(name: str, results: Iterable[object], expected: Iterable[object]) -> None:
    if list(results) != list(expected):
        raise RuntimeError(f"{name}: wrong results")


# ------------------------------------------------------------------------------------------
# S5: kill a worker with SIGKILL, time a new one to finish its workflows
# ------------------------------------------------------------------------------------------


def worker_command(system: str, phase: str, target: str, n: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.peers.child",
        system,
        "s5-worker",
        "--phase",
        phase,
        "--target",
        target,
        "--n",
        str(n),
    ]


async def kill_and_recover(
    system: str, target: str, n: int, timeout: float, env: dict[str, str] | None = None
) -> Result:
    """S5: a worker process starts ``n`` workflows on ``target`` (a database or a server) and
    runs them; ``S5_KILL_AFTER_S`` after its last start is acknowledged it is killed with
    SIGKILL; a new worker process is started at once and must finish them all.

    The figure is the time from the kill to the last result, seen by the new process (its
    own start-up and imports included). ``time.perf_counter`` is ``CLOCK_MONOTONIC``, the same
    clock in every process of the machine.
    """
    environment = {**os.environ, **(env or {})}
    first = await asyncio.create_subprocess_exec(
        *worker_command(system, "start", target, n),
        cwd=ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
    )
    assert first.stdout is not None
    try:
        line = await asyncio.wait_for(first.stdout.readline(), timeout)
        if not line.startswith(b"started"):
            raise RuntimeError(f"S5 worker did not start its workflows: {line!r}")
        await asyncio.sleep(S5_KILL_AFTER_S)
    finally:
        first.send_signal(signal.SIGKILL)
        killed_at = time.perf_counter()
        await first.wait()
    second = await asyncio.create_subprocess_exec(
        *worker_command(system, "resume", target, n),
        cwd=ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
    )
    assert second.stdout is not None
    try:
        line = await asyncio.wait_for(second.stdout.readline(), timeout)
        if not line.startswith(b"done "):
            raise RuntimeError(f"S5 new worker did not finish: {line!r}")
        done_at = float(line.split()[1])
    finally:
        if second.returncode is None:
            second.send_signal(signal.SIGKILL)
        await second.wait()
    return Result({"s after kill": done_at - killed_at})


# ------------------------------------------------------------------------------------------
# S7: a client process and a worker process
# ------------------------------------------------------------------------------------------


@asynccontextmanager
async def worker_process(system: str, target: str) -> AsyncIterator[None]:
    """S7: a process running ``system``'s worker on ``target`` (the module's ``s7_worker``),
    until it is sent SIGTERM; entered once the worker says it runs."""
    command = [sys.executable, "-m", "benchmarks.peers.child", system, "s7-worker"]
    proc = await asyncio.create_subprocess_exec(
        *command, "--target", target, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        if not line.startswith(b"ready"):
            raise RuntimeError(f"S7 worker process did not start: {line!r}")
        yield
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def sequential_latency(
    execute: Callable[[int], Awaitable[object]], warmup: int, runs: int
) -> Result:
    """S7's figures: ``execute(i)`` (start a workflow, wait for its result ``i``) one at a time,
    ``runs`` times after ``warmup``; p50, p95 and p99."""
    samples = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        result = await execute(i)
        if i >= warmup:
            samples.append(time.perf_counter() - t0)
        check_results("S7", [result], [i])
    return Result(percentiles_ms(samples))


def report_ready() -> None:
    print("ready", flush=True)


def report_started() -> None:
    print("started", flush=True)


def report_done() -> None:
    print(f"done {time.perf_counter()!r}", flush=True)
