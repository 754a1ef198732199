"""Worker processes of the torture app, and the checks every torture run ends with."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import app
from harness.auditor import audit, completed_activity_seqs
from harness.checker import QueueReport, check_queue
from harness.ledger import Ledger
from perdure.client import Client, WorkflowExecutionStatus

HERE = Path(__file__).resolve().parent.parent  # tests/reliability, where `harness` lives


class Workers:
    """``harness.app`` worker processes on one database; all killed at the end."""

    def __init__(
        self, directory: Path, url: str, ledger: str, *, env: dict[str, str] | None = None
    ) -> None:
        self.env = env or {}
        self.directory = directory
        self.url = url
        self.ledger = ledger
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kills = 0
        self.spawned = 0
        self.killed_pids: set[int] = set()
        # pid -> time.time() of its SIGKILL (or of its death at a crash point)
        self.kill_times: dict[int, float] = {}

    def spawn(
        self,
        name: str,
        *,
        url: str | None = None,
        faults: str = "",
        env: dict[str, str] | None = None,
        task_queue: str | None = None,
        module: str = "harness.app",
    ) -> subprocess.Popen[bytes]:
        """Start a worker process of ``module`` (``harness.app``, the torture workflow's;
        ``harness.signal_app``, the signal burst's)."""
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(HERE), *filter(None, [environ.get("PYTHONPATH")])]
        )
        environ.update(self.env)
        environ.update(env or {})
        command = [sys.executable, "-m", module, "worker", url or self.url, self.ledger]
        if faults:
            command += ["--faults", faults]
        if task_queue:
            command += ["--task-queue", task_queue]
        self.spawned += 1
        with open(self.directory / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory, env=environ
            )
        self.procs[name] = proc
        return proc

    def spawn_sender(
        self, name: str, streams: list[Any], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A process sending ``scenarios.Stream``\\ s of signals (see
        ``scenarios.send_signals``), logged and stopped at the end like the workers."""
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(HERE), *filter(None, [environ.get("PYTHONPATH")])]
        )
        environ.update(env or {})
        command = [sys.executable, "-m", "harness.app", "signal", self.url]
        for stream in streams:
            command += stream.args()
        with open(self.directory / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory, env=environ
            )
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            self.kills += 1
            self.killed_pids.add(proc.pid)
            self.kill_times[proc.pid] = time.time()
        proc.wait(timeout=30)

    def dead(self) -> list[str]:
        """Workers that exited though nobody killed them (a crash point, or a bug)."""
        return [n for n, p in self.procs.items() if p.poll() is not None and p.returncode != -9]

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def logs(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {n} ---\n{self.log(n)[-chars:]}" for n in self.procs)

    def count_in_logs(self, text: str) -> int:
        return sum(self.log(n).count(text) for n in self.procs)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


@dataclass
class TortureReport:
    workflows: int = 0
    completed: int = 0
    queue: QueueReport = field(default_factory=QueueReport)
    history_problems: list[str] = field(default_factory=list)
    duplicate_completions: int = 0
    missing_executions: list[tuple[str, int]] = field(default_factory=list)
    extra_executions: int = 0
    # Why each extra execution happened: "killed" (its worker was killed before the next
    # attempt began) or "lease expired" (the next attempt began while its worker lived: the
    # attempt outlasted its start-to-close timeout).
    extra_reasons: Counter[str] = field(default_factory=Counter)
    # What no kill or lease explains: an attempt number that ran twice.
    unexplained_extra: list[str] = field(default_factory=list)
    interrupted: int = 0
    drain_seconds: float = 0.0

    def problems(self) -> list[str]:
        out = list(self.history_problems)
        if not self.queue.valid:
            out.append("queue checker: " + self.queue.summary())
        if self.completed != self.workflows:
            out.append(f"{self.workflows - self.completed} workflows did not complete")
        if self.duplicate_completions:
            out.append(f"{self.duplicate_completions} duplicated activity completions")
        if self.unexplained_extra:
            out.append(f"extra executions no kill explains: {self.unexplained_extra[:10]}")
        if self.missing_executions:
            out.append(f"completed without a ledger 'after': {self.missing_executions[:10]}")
        return out

    def figures(self) -> str:
        return (
            f"workflows={self.workflows} completed={self.completed} lost={len(self.queue.lost)} "
            f"duplicated_results={len(self.queue.duplicated)} wrong={len(self.queue.wrong)} "
            f"duplicated_activity_completions={self.duplicate_completions} "
            f"extra_executions={self.extra_executions} {dict(self.extra_reasons)} (attempts "
            f"interrupted before their side effect was done: {self.interrupted}) "
            f"drain={self.drain_seconds:.1f}s"
        )


async def start_all(client: Client, inputs: dict[str, int], steps: int) -> None:
    for wid, value in inputs.items():
        await app.start(client, wid, value, steps)


async def wait_all(
    client: Client, inputs: dict[str, int], deadline_s: float, workers: Workers | None = None
) -> float:
    """Wait until every workflow closed; the seconds it took. Raises AssertionError with the
    workflows still open (and the workers' logs) after ``deadline_s``."""
    began = time.monotonic()
    pending = set(inputs)
    while pending:
        closed = set()
        for wid in list(pending)[:200]:
            d = await client.get_workflow_handle(wid).describe()
            if d.status != WorkflowExecutionStatus.RUNNING:
                closed.add(wid)
        pending -= closed
        if not pending:
            break
        if time.monotonic() - began > deadline_s:
            logs = workers.logs() if workers else ""
            raise AssertionError(
                f"{len(pending)} workflows still open after {deadline_s:.0f}s: "
                f"{sorted(pending)[:10]}\n{logs}"
            )
        await asyncio.sleep(0.2)
    return time.monotonic() - began


async def check_torture(
    client: Client,
    inputs: dict[str, int],
    steps: int,
    ledger: Ledger,
    *,
    killed_pids: set[int] | None = None,
    kill_times: dict[int, float] | None = None,
) -> TortureReport:
    """The pass criteria of a torture run: results against the reference, the history
    auditor on every run, each activity completed once in history and at least once in the
    ledger, and the extra executions the ledger shows (an attempt that did its side effect
    but is not the attempt history recorded), each with its reason: its worker was killed
    (``kill_times``) before the next attempt began, or else its lease expired."""
    report = TortureReport(workflows=len(inputs))
    delivered: list[tuple[str, Any]] = []
    entries = ledger.entries()
    executions = ledger.executions()
    started = ledger.started()
    after: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for entry in entries:
        if entry.phase == "after":
            after.setdefault((entry.workflow_id, entry.seq), []).append((entry.attempt, entry.pid))
    for wid in inputs:
        handle = client.get_workflow_handle(wid)
        d = await handle.describe()
        history = await handle.fetch_history()
        events = list(history.events)
        closed = d.status != WorkflowExecutionStatus.RUNNING
        report.history_problems += audit(wid, events, closed=closed)
        if d.status == WorkflowExecutionStatus.COMPLETED:
            report.completed += 1
            delivered += [
                (wid, await _value(client, e.attributes["result"]))
                for e in events
                if str(getattr(e.event_type, "value", e.event_type)) == "WorkflowExecutionCompleted"
            ]
        recorded = {
            e.attributes.get("seq"): e.attributes.get("attempt")
            for e in events
            if str(getattr(e.event_type, "value", e.event_type)) == "ActivityTaskStarted"
        }
        for seq, attempt in recorded.items():
            runs = after.get((wid, seq), [])
            same = [pid for a, pid in runs if a == attempt]
            if len(same) > 1:
                report.unexplained_extra.append(f"{wid} seq {seq}: attempt {attempt} ran twice")
            began = {
                e.attempt: e.at
                for e in entries
                if (e.workflow_id, e.seq) == (wid, seq) and e.phase == "before"
            }
            for a, pid in runs:
                if a == attempt:
                    continue
                next_began = min((t for n, t in began.items() if n > a), default=float("inf"))
                killed_at = (kill_times or {}).get(pid)
                if killed_at is not None and killed_at <= next_began:
                    report.extra_reasons["killed"] += 1
                else:
                    report.extra_reasons["lease expired"] += 1
        completions = completed_activity_seqs(events)
        report.duplicate_completions += sum(n - 1 for n in completions.values() if n > 1)
        for seq in completions:
            if executions.get((wid, seq), 0) < 1:
                report.missing_executions.append((wid, seq))
        for seq in range(1, steps + 1):
            report.extra_executions += max(0, executions.get((wid, seq), 0) - 1)
            report.interrupted += started.get((wid, seq), 0) - executions.get((wid, seq), 0)
    report.queue = check_queue(inputs, delivered, lambda v: app.reference(v, steps))
    return report


async def _value(client: Client, result: Any) -> Any:
    payloads = result if isinstance(result, list) else [result]
    values = await client.data_converter.decode(payloads)
    return values[0] if values else None


def in_flight(ledger: Ledger) -> dict[int, int]:
    """pid -> how many attempts it began and has not finished (by the ledger)."""
    open_: dict[tuple[str, int, int, int], int] = {}
    for e in ledger.entries():
        key = (e.workflow_id, e.seq, e.attempt, e.pid)
        open_[key] = open_.get(key, 0) + (1 if e.phase == "before" else -1)
    out: dict[int, int] = {}
    for (_, _, _, pid), n in open_.items():
        if n > 0:
            out[pid] = out.get(pid, 0) + n
    return out


async def kill_in_flight(
    workers: Workers, ledger: Ledger, rng: Any, *, after_done: int, timeout_s: float = 30.0
) -> int:
    """Once the ledger shows ``after_done`` finished side effects, SIGKILL a worker that has
    an activity in flight (chosen with ``rng``) and start it again; how many attempts the
    kill interrupted (by the ledger, as it was at the kill)."""
    began = time.monotonic()
    while True:
        done = sum(ledger.executions().values())
        flying = in_flight(ledger)
        by_name = {
            name: flying.get(p.pid, 0) for name, p in workers.procs.items() if p.poll() is None
        }
        candidates = sorted(n for n, k in by_name.items() if k > 0)
        if done >= after_done and candidates:
            victim = rng.choice(candidates)
            workers.kill(victim)
            workers.spawn(victim)
            return by_name[victim]
        if time.monotonic() - began > timeout_s:
            raise AssertionError(
                f"no worker had an activity in flight within {timeout_s:.0f}s "
                f"(done={done})\n{workers.logs()}"
            )
        await asyncio.sleep(0.01)


async def poll_until(what: str, predicate: Any, timeout_s: float = 30.0, logs: Any = None) -> None:
    """Poll ``predicate()`` (every 10 ms) until it is true; AssertionError naming ``what``
    (and the workers' logs, if given) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    for _ in iter(int, 1):
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s:.0f}s waiting until {what}\n"
                + (logs.logs() if logs is not None else "")
            )
        await asyncio.sleep(0.01)
