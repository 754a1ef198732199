"""Timers and signals at scale, under worker kills (RELIABILITY.md sections 9 and 10): the
runs behind ``test_timers_signals_at_scale.py`` (CI sizes) and ``benchmarks.torture``'s long
tier (the full ones).

* ``timer_storm``: ``Alarms`` workflows, each with timers due uniformly over ``span_s``
  seconds, all set at once; every worker SIGKILLed together ``kill_rounds`` times during the
  window (nobody runs for a moment, then fresh workers start), and the database restarted
  ``restarts`` times if a ``restart`` callable is given. Every timer must fire exactly once,
  never early; the lateness of each is measured (its ``TimerFired`` event time minus its
  ``fire_at``).
* ``signal_burst``: ``senders`` concurrent senders per ``Listener`` workflow (spread over
  ``processes`` sender processes), each signalling its own range of ``per_sender`` values
  one after the other, while workers are SIGKILLed. Every
  value must be in history once, each sender's values in the order it sent them, and the
  workflow's handler must have seen them in history's order (its result).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from harness import app, scenarios
from harness.auditor import audit, signals
from harness.ledger import Ledger
from harness.workers import Workers, wait_all
from perdure import Client
from perdure.client import WorkflowExecutionStatus


def _type(event: Any) -> str:
    return str(getattr(event.event_type, "value", event.event_type))


@dataclass
class TimerReport:
    workflows: int = 0
    timers: int = 0
    fired: int = 0
    completed: int = 0
    kills: int = 0
    restarts: int = 0
    problems: list[str] = field(default_factory=list)
    # (due time, lateness) of every timer fired, in seconds of the store's (real) clock.
    lateness: list[tuple[float, float]] = field(default_factory=list)
    # (began, ended) of every fault: no worker running, or the database restarting.
    outages: list[tuple[float, float]] = field(default_factory=list)
    seconds: float = 0.0

    def split(self, slack: float = 3.0) -> tuple[list[float], list[float]]:
        """The lateness of timers due outside any outage (or ``slack`` seconds after one,
        while fresh workers start), and of those due in one."""
        calm, hit = [], []
        for due, late in self.lateness:
            inside = any(a <= due <= b + slack for a, b in self.outages)
            (hit if inside else calm).append(late)
        return calm, hit

    def figures(self) -> str:
        calm, hit = self.split()
        longest = max((b - a for a, b in self.outages), default=0.0)
        return (
            f"timers {self.timers} in {self.workflows} workflows, fired {self.fired} "
            f"(each once, none early: {not self.problems}), completed {self.completed}; "
            f"SIGKILL rounds {self.kills}, store restarts {self.restarts}; lateness of the "
            f"{len(calm)} due outside faults {_quantiles(calm)}; of the {len(hit)} due in "
            f"one (longest fault {longest:.1f} s) {_quantiles(hit)}; {self.seconds:.1f} s"
        )


def _quantiles(values: list[float]) -> str:
    if not values:
        return "-"
    v = sorted(values)
    p99 = v[min(len(v) - 1, int(len(v) * 0.99))]
    return f"p50 {statistics.median(v):.2f} s, p99 {p99:.2f} s, max {v[-1]:.2f} s"


async def timer_storm(
    url: str,
    directory: Path,
    rng: random.Random,
    *,
    workflows: int,
    timers: int,
    span_s: float,
    workers: int = 2,
    kill_rounds: int = 2,
    outage_s: tuple[float, float] = (0.2, 1.0),
    restarts: int = 0,
    restart: Callable[[], None] | None = None,
    deadline_s: float = 120.0,
    task_timeout: timedelta = app.TASK_TIMEOUT,
) -> TimerReport:
    report = TimerReport(workflows=workflows, timers=timers)
    ledger = Ledger(str(directory / "ledger.db"))
    procs = Workers(directory, url, ledger.path)
    client = await Client.connect(url)
    began = time.monotonic()
    try:
        names = [f"w{i}" for i in range(workers)]
        for name in names:
            procs.spawn(name)
        per = timers // workflows
        plans = {
            f"alarms-{i}": (
                rng.randrange(1_000_000),
                [round(rng.uniform(0.05, span_s), 3) for _ in range(per)],
            )
            for i in range(workflows)
        }
        report.timers = per * workflows
        for wid, (value, delays) in plans.items():
            await client.start_workflow(
                scenarios.Alarms.run,
                args=(value, delays),
                id=wid,
                task_queue=app.TASK_QUEUE,
                task_timeout=task_timeout,
            )
        t0 = time.monotonic()
        faults = sorted(
            [(rng.uniform(0.1, 0.9) * span_s, "kill") for _ in range(kill_rounds)]
            + [
                (rng.uniform(0.1, 0.9) * span_s, "restart")
                for _ in range(restarts if restart else 0)
            ]
        )
        for at, what in faults:
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            down = time.time()
            if what == "restart" and restart is not None:
                await asyncio.to_thread(restart)
                report.restarts += 1
                report.outages.append((down, time.time()))
                continue
            for name in names:
                procs.kill(name)
            await asyncio.sleep(rng.uniform(*outage_s))
            for name in names:
                procs.spawn(name)
            report.kills += 1
            report.outages.append((down, time.time()))
        await wait_all(client, {wid: 0 for wid in plans}, deadline_s, procs)
        for wid, (value, delays) in plans.items():
            handle = client.get_workflow_handle(wid)
            events = list((await handle.fetch_history()).events)
            report.problems += audit(wid, events, closed=True)
            started = {e.event_id: e for e in events if _type(e) == "TimerStarted"}
            fired = Counter(
                e.attributes.get("started_event_id") for e in events if _type(e) == "TimerFired"
            )
            if len(started) != len(delays):
                report.problems.append(f"{wid}: {len(started)} timers started, {len(delays)} set")
            for sid in started:
                if fired[sid] != 1:
                    report.problems.append(f"{wid}: timer #{sid} fired {fired[sid]} times")
            report.fired += sum(fired.values())
            for e in events:
                if _type(e) == "TimerFired":
                    s = started.get(e.attributes.get("started_event_id"))
                    if s is not None:
                        due = s.attributes["fire_at"]
                        report.lateness.append((due, e.event_time - due))
            d = await handle.describe()
            if d.status == WorkflowExecutionStatus.COMPLETED:
                report.completed += 1
                if await handle.result() != app.reference(value, len(delays)):
                    report.problems.append(f"{wid}: wrong result")
            else:
                report.problems.append(f"{wid}: {d.status.name}")
        dead = procs.dead()
        if dead:
            report.problems.append(f"workers that died on their own: {dead}")
        report.seconds = time.monotonic() - began
        return report
    finally:
        procs.stop_all()
        await client.close()
        ledger.close()


@dataclass
class SignalReport:
    workflows: int = 0
    signals: int = 0
    in_history: int = 0
    kills: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def figures(self) -> str:
        rate = self.signals / self.seconds if self.seconds else 0.0
        return (
            f"signals {self.signals} to {self.workflows} workflows, in history "
            f"{self.in_history} (each once, in each sender's order: {not self.problems}); "
            f"SIGKILLs of workers {self.kills}; {self.seconds:.1f} s ({rate:.0f} signals/s)"
        )


async def signal_burst(
    url: str,
    directory: Path,
    rng: random.Random,
    *,
    workflows: int,
    senders: int,
    per_sender: int,
    kills: int,
    processes: int = 2,
    workers: int = 2,
    deadline_s: float = 300.0,
) -> SignalReport:
    report = SignalReport(workflows=workflows, signals=workflows * senders * per_sender)
    ledger = Ledger(str(directory / "ledger.db"))
    procs = Workers(directory, url, ledger.path)
    client = await Client.connect(url)
    began = time.monotonic()
    try:
        names = [f"w{i}" for i in range(workers)]
        for name in names:
            procs.spawn(name)
        wids = [f"listener-{i}" for i in range(workflows)]
        for wid in wids:
            await scenarios.start_listener(client, wid, senders * per_sender, app.TASK_QUEUE)
        streams = [
            scenarios.Stream(
                wid, j * per_sender, per_sender, str(directory / f"acks-{wid}-{j}.txt")
            )
            for wid in wids
            for j in range(senders)
        ]
        sending = {
            f"send-{k}": procs.spawn_sender(f"send-{k}", streams[k::processes])
            for k in range(processes)
        }
        for k in range(kills):
            # Spread over the burst: the k-th kill once (k+1)/(kills+2) of it is acknowledged.
            target = report.signals * (k + 1) // (kills + 2)
            while sum(len(scenarios.acknowledged(s.acks)) for s in streams) < target:
                if all(p.poll() is not None for p in sending.values()):
                    break
                await asyncio.sleep(0.05)
            if all(p.poll() is not None for p in sending.values()):
                break
            victim = rng.choice(names)
            procs.kill(victim)
            procs.spawn(victim)
        report.kills = procs.kills
        while any(p.poll() is None for p in sending.values()):
            if time.monotonic() - began > deadline_s:
                raise AssertionError(f"senders still running after {deadline_s} s")
            await asyncio.sleep(0.1)
        for name, proc in sending.items():
            if proc.returncode != 0:
                report.problems.append(f"{name} exited {proc.returncode}")
        for stream in streams:
            if scenarios.acknowledged(stream.acks) != list(
                range(stream.first, stream.first + stream.n)
            ):
                report.problems.append(f"{stream}: not every signal acknowledged")
        await wait_all(client, {wid: 0 for wid in wids}, deadline_s, procs)
        for wid in wids:
            handle = client.get_workflow_handle(wid)
            events = list((await handle.fetch_history()).events)
            report.problems += audit(wid, events, closed=True)
            payloads = [p[0] for p in signals(events)]
            values = await client.data_converter.decode(payloads) if payloads else []
            report.in_history += len(values)
            if len(values) != len(set(values)):
                report.problems.append(f"{wid}: {len(values) - len(set(values))} duplicates")
            for j in range(senders):
                mine = [v for v in values if j * per_sender <= v < (j + 1) * per_sender]
                if mine != list(range(j * per_sender, (j + 1) * per_sender)):
                    report.problems.append(f"{wid}: sender {j}'s signals lost or out of order")
            if await handle.result() != values:
                report.problems.append(f"{wid}: the handler saw another order than history's")
        dead = procs.dead()
        if [n for n in dead if not n.startswith("send-")]:
            report.problems.append(f"workers that died on their own: {dead}")
        report.seconds = time.monotonic() - began
        return report
    finally:
        procs.stop_all()
        await client.close()
        ledger.close()
