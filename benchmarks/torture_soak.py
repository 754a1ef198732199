"""The soak tier (RELIABILITY.md section 14): ``python -m benchmarks.torture --tier soak
--minutes N`` runs a steady mixed load for N minutes with periodic faults, samples the
workers' memory and file descriptors and the backlog, then drains and checks everything.

Load: ``--rate`` workflows a second, a mix of the torture app's kinds: ``Torture`` (3
sequential activities), ``Sleeper`` (2 durable timers), ``Parent`` (a child running an
activity) and ``Listener`` (5 signals, sent by this process). Faults: every
``--fault-every`` seconds a worker (``w1`` or ``w2``; ``w0`` lives the whole run, so its
samples show a trend) is SIGKILLed and started again; on PostgreSQL every third fault is an
immediate restart of the run's own server instead. Every worker fails ``--fault-rate`` of its
store calls, as in the long tier.

Pass criteria: every workflow started completes with its reference result and its history
passes the auditor (lost 0, wrong 0); ``w0``'s memory at the end is within 25% (or 30 MB)
of its memory after the first fifth of the run, its file descriptors within 10; the backlog
(running workflows) in the last fifth is no more than twice the second fifth's plus 50
(the load is not outrunning the workers more and more).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import app, scenarios
from harness.auditor import audit, child_problems
from harness.ledger import Ledger
from harness.workers import Workers

from perdure import Client
from perdure.client import WorkflowExecutionStatus

SIGNALS = 5
SAMPLE_EVERY_S = 10.0
MEMORY_GROWTH = 0.25
MEMORY_SLACK_KB = 30 * 1024
FD_SLACK = 10


@dataclass
class Sample:
    at: float
    rss_kb: int
    fds: int
    running: int


@dataclass
class SoakReport:
    backend: str
    minutes: float
    started: dict[str, int] = field(default_factory=dict)
    completed: int = 0
    lost: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    history_problems: list[str] = field(default_factory=list)
    kills: int = 0
    restarts: int = 0
    samples: list[Sample] = field(default_factory=list)
    drain_s: float = 0.0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def figures(self) -> str:
        s = self.samples
        fifth = max(1, len(s) // 5)
        early, late = s[fifth - 1], s[-1]
        second = [x.running for x in s[fifth : 2 * fifth]] or [0]
        last = [x.running for x in s[-fifth:]] or [0]
        total = sum(self.started.values())
        return "\n".join(
            [
                f"soak on {self.backend}: {self.minutes:g} min of load, {total} workflows "
                f"({self.started}), {total / (self.minutes * 60):.1f}/s; completed "
                f"{self.completed}, not completed by the drain's deadline {len(self.lost)}, "
                f"wrong {len(self.wrong)}, history "
                f"invariant violations {len(self.history_problems)}; drained "
                f"{self.drain_s:.1f} s after the load stopped; {self.seconds:.0f} s in all",
                f"  faults: SIGKILLs {self.kills}, PostgreSQL immediate restarts {self.restarts}",
                f"  w0 memory (RSS) after the first fifth {early.rss_kb / 1024:.1f} MB, at the "
                f"end {late.rss_kb / 1024:.1f} MB, max {max(x.rss_kb for x in s) / 1024:.1f} "
                f"MB; file descriptors {early.fds} -> {late.fds} (max "
                f"{max(x.fds for x in s)})",
                f"  backlog (running workflows): second fifth max {max(second)}, last fifth "
                f"max {max(last)}, median over the run "
                f"{statistics.median(x.running for x in s):.0f}; {len(s)} samples",
            ]
        )


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


async def soak(backend: str, minutes: float, seed: int, args: argparse.Namespace) -> SoakReport:
    from benchmarks.torture import database

    rng = random.Random(seed)
    report = SoakReport(backend=backend, minutes=minutes)
    directory = Path(tempfile.mkdtemp(prefix=f"perdure-soak-{backend}-"))
    faults_file = directory / "faults.txt"
    began = time.monotonic()
    with database(backend, directory) as (url, server):
        ledger = Ledger(str(directory / "ledger.db"))
        workers = Workers(directory, url, ledger.path)
        client = await Client.connect(url)
        expected: dict[str, Any] = {}
        try:
            for i in range(3):
                workers.spawn(f"w{i}", faults=f"{seed + i}:{args.fault_rate}::{faults_file}")
            end = time.monotonic() + minutes * 60
            next_fault = time.monotonic() + args.fault_every
            next_sample = time.monotonic()
            faults = 0
            n = 0
            signalling: list[asyncio.Task[None]] = []
            while time.monotonic() < end:
                tick = time.monotonic()
                for _ in range(_poisson(rng, args.rate)):
                    n += 1
                    kind = rng.choice(["torture", "sleeper", "parent", "listener"])
                    wid, value = f"{kind}-{n}", rng.randrange(1_000_000)
                    expected[wid] = await _start(client, kind, wid, value)
                    report.started[kind] = report.started.get(kind, 0) + 1
                    if kind == "listener":
                        signalling.append(asyncio.create_task(_signal(client, wid)))
                if tick >= next_fault:
                    faults += 1
                    if server is not None and faults % 3 == 0:
                        await asyncio.to_thread(server.restart, "immediate")
                        report.restarts += 1
                    else:
                        victim = f"w{1 + faults % 2}"
                        workers.kill(victim)
                        workers.spawn(
                            victim,
                            faults=f"{rng.randrange(2**31)}:{args.fault_rate}::{faults_file}",
                        )
                    next_fault = tick + args.fault_every
                if tick >= next_sample:
                    pid = workers.procs["w0"].pid
                    try:
                        running = (
                            await client.count_workflows("ExecutionStatus = 'Running'")
                        ).count
                    except Exception:  # the server is restarting: no sample of the backlog
                        running = report.samples[-1].running if report.samples else 0
                    report.samples.append(Sample(tick - began, _rss_kb(pid), _fds(pid), running))
                    next_sample = tick + SAMPLE_EVERY_S
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
            report.kills = workers.kills
            drain_began = time.monotonic()
            await asyncio.gather(*signalling)
            await _drain(client, expected, args.deadline)
            report.drain_s = time.monotonic() - drain_began
            pid = workers.procs["w0"].pid
            report.samples.append(Sample(time.monotonic() - began, _rss_kb(pid), _fds(pid), 0))
            await _check(client, expected, report)
            dead = workers.dead()
            if dead:
                report.problems.append(f"workers that died on their own: {dead}")
        finally:
            workers.stop_all()
            await client.close()
            ledger.close()
    report.seconds = time.monotonic() - began
    report.problems += _growth(report)
    return report


def _poisson(rng: random.Random, rate: float) -> int:
    count, t = 0, rng.expovariate(rate)
    while t < 1.0:
        count += 1
        t += rng.expovariate(rate)
    return count


async def _start(client: Client, kind: str, wid: str, value: int) -> Any:
    q = app.TASK_QUEUE
    if kind == "torture":
        await app.start(client, wid, value, 3)
        return app.reference(value, 3)
    if kind == "sleeper":
        await scenarios.start_sleeper(client, wid, value, 2, 1.0, q)
        return app.reference(value, 2)
    if kind == "parent":
        await scenarios.start_parent(client, wid, value, 1, q)
        return scenarios.parent_reference(value, 1)
    await scenarios.start_listener(client, wid, SIGNALS, q)
    return list(range(SIGNALS))


async def _signal(client: Client, wid: str) -> None:
    handle = client.get_workflow_handle(wid)
    for value in range(SIGNALS):
        while True:  # a signal refused (the server restarting) is sent again
            try:
                await handle.signal(scenarios.SIGNAL, value)
                break
            except Exception:
                await asyncio.sleep(0.5)
        await asyncio.sleep(0.2)


async def _drain(client: Client, expected: dict[str, Any], deadline_s: float) -> None:
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        try:
            if (await client.count_workflows("ExecutionStatus = 'Running'")).count == 0:
                return
        except Exception:
            pass
        await asyncio.sleep(1.0)


async def _check(client: Client, expected: dict[str, Any], report: SoakReport) -> None:
    for wid, result in expected.items():
        handle = client.get_workflow_handle(wid)
        d = await handle.describe()
        events = list((await handle.fetch_history()).events)
        closed = d.status != WorkflowExecutionStatus.RUNNING
        report.history_problems += audit(wid, events, closed=closed) + child_problems(wid, events)
        if d.status != WorkflowExecutionStatus.COMPLETED:
            report.lost.append(f"{wid}: {d.status.name}")
            continue
        report.completed += 1
        if await handle.result() != result:
            report.wrong.append(wid)
    report.problems += report.lost[:5] + report.wrong[:5] + report.history_problems[:5]


def _growth(report: SoakReport) -> list[str]:
    s = report.samples
    if len(s) < 5:
        return ["too few samples to judge growth: run the soak longer"]
    fifth = len(s) // 5
    early, late = s[fifth - 1], s[-1]
    problems = []
    bound = max(early.rss_kb * (1 + MEMORY_GROWTH), early.rss_kb + MEMORY_SLACK_KB)
    if late.rss_kb > bound:
        problems.append(f"w0's memory grew from {early.rss_kb} kB to {late.rss_kb} kB")
    if late.fds > early.fds + FD_SLACK:
        problems.append(f"w0's file descriptors grew from {early.fds} to {late.fds}")
    second = max(x.running for x in s[fifth : 2 * fifth])
    last = max(x.running for x in s[-fifth - 1 : -1])
    if last > 2 * second + 50:
        problems.append(f"the backlog grew from {second} to {last} running workflows")
    return problems


def main(args: argparse.Namespace, seed: int) -> int:
    backend = "postgresql" if args.backend == "both" else args.backend
    print(f"torture tier soak, seed {seed} (re-run: --seed {seed})", flush=True)
    report = asyncio.run(soak(backend, args.minutes, seed, args))
    print(report.figures(), flush=True)
    if args.samples:
        with open(args.samples, "w") as out:
            out.write("seconds,rss_kb,fds,running\n")
            for x in report.samples:
                out.write(f"{x.at:.1f},{x.rss_kb},{x.fds},{x.running}\n")
        print(f"  w0's samples: {args.samples}", flush=True)
    for problem in report.problems:
        print(f"  PROBLEM: {problem}", flush=True)
    print("PASS" if not report.problems else "FAIL")
    return 0 if not report.problems else 1
