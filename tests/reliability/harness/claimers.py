"""Racing claimers across processes (RELIABILITY.md section 5): worker processes race for
one task queue holding many tiny activity tasks at once, with claim batches of 1, 10 and 100
(each process's ``max_concurrent_activities``, the most it claims in one go), and a lease
long enough that none runs out: any task delivered twice is a bug.

``Fan(n)`` schedules ``n`` activities at once; each execution of one appends
``<workflow id> <seq> <attempt>`` to its process's delivery file (plain appends: no process
is killed here, so nothing needs to survive one). The Jepsen total-queue checker then counts
lost, duplicated and unexpected deliveries, and every workflow must return its reference.

Usage (the worker process): ``python -m harness.claimers worker URL LOGFILE BATCH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from harness.auditor import audit
from harness.checker import QueueReport, check_queue
from perdure import Client, Worker, activity, workflow

QUEUE = "claimers"
# Long enough that no lease runs out on a loaded machine: a duplicate is then a bug.
LEASE = timedelta(minutes=30)
BATCHES = (1, 10, 100)
_log: list[str] = []


@activity.defn
async def probe(seq: int) -> int:
    info = activity.info()
    _log.append(f"{info.workflow_id} {seq} {info.attempt}\n")
    return seq


@workflow.defn
class Fan:
    @workflow.run
    async def run(self, n: int) -> int:
        results = await asyncio.gather(
            *(
                workflow.execute_activity(probe, seq, start_to_close_timeout=LEASE)
                for seq in range(n)
            )
        )
        return sum(results)


@dataclass
class RaceReport:
    tasks: int = 0
    processes: int = 0
    queue: QueueReport = field(default_factory=QueueReport)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def figures(self) -> str:
        rate = self.tasks / self.seconds if self.seconds else 0.0
        return (
            f"tasks {self.tasks} raced for by {self.processes} processes (claim batches "
            f"{BATCHES}): {self.queue.summary()}; {self.seconds:.1f} s ({rate:.0f} tasks/s)"
        )


async def race(
    url: str,
    directory: Path,
    *,
    tasks: int,
    processes: int,
    per_workflow: int = 1000,
    deadline_s: float = 3600.0,
    batch: int | None = None,
) -> RaceReport:
    """``tasks`` activity tasks (``Fan`` workflows of ``per_workflow``), all scheduled
    before ``processes`` workers start; the workers' batches cycle through ``BATCHES``."""
    workflows = max(1, tasks // per_workflow)
    report = RaceReport(tasks=workflows * per_workflow, processes=processes)
    client = await Client.connect(url)
    procs: list[subprocess.Popen[bytes]] = []
    began = time.monotonic()
    try:
        wids = [f"fan-{i}" for i in range(workflows)]
        for wid in wids:
            await client.start_workflow(
                Fan.run, per_workflow, id=wid, task_queue=QUEUE, task_timeout=LEASE
            )
        for k in range(processes):
            size = BATCHES[k % len(BATCHES)] if batch is None else batch
            procs.append(_spawn(url, directory, k, size))
        for wid in wids:
            handle = client.get_workflow_handle(wid)
            remaining = deadline_s - (time.monotonic() - began)
            result = await asyncio.wait_for(handle.result(), max(1.0, remaining))
            if result != sum(range(per_workflow)):
                report.problems.append(f"{wid} returned {result}")
            events = list((await handle.fetch_history()).events)
            report.problems += audit(wid, events, closed=True)
        report.seconds = time.monotonic() - began
        for proc in procs:  # flushes its deliveries as it ends
            proc.terminate()
            proc.wait(timeout=60)
        delivered = []
        for k in range(processes):
            path = directory / f"deliveries-{k}.txt"
            if path.exists():
                for line in path.read_text().splitlines():
                    wid, seq, _ = line.split()
                    delivered.append((f"{wid}/{seq}", int(seq)))
        inputs = {f"{wid}/{seq}": seq for wid in wids for seq in range(per_workflow)}
        report.queue = check_queue(inputs, delivered, lambda v: v)
        if not report.queue.valid:
            report.problems.append("queue checker: " + report.queue.summary())
        return report
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        await client.close()


HERE = Path(__file__).resolve().parent.parent  # tests/reliability, where `harness` lives


def _spawn(url: str, directory: Path, k: int, size: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [env.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "harness.claimers", "worker", url]
    command += [str(directory / f"deliveries-{k}.txt"), str(size)]
    with open(directory / f"claimer-{k}.log", "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def _append(path: str, lines: list[str]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(lines)


async def _worker(url: str, logfile: str, size: int) -> None:
    client = await Client.connect(url)
    worker = Worker(
        client,
        task_queue=QUEUE,
        workflows=[Fan],
        activities=[probe],
        max_concurrent_activities=size,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def flush() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            lines = list(_log)
            _log.clear()
            _append(logfile, lines)

    async with worker:
        await flush()


if __name__ == "__main__":
    if sys.argv[1:2] != ["worker"]:
        sys.exit("usage: python -m harness.claimers worker URL LOGFILE BATCH")
    asyncio.run(_worker(sys.argv[2], sys.argv[3], int(sys.argv[4])))
