"""The app the flow-control tests run, in this process or in worker processes
(``python flow_app.py URL --rate R --per-key N``).

``paced_call`` returns the time its attempt started (``activity.info().started_time``, the
time the store leased it), so a workflow's result, recorded in its history, says when each
call was let through. ``keyed_work`` appends ``B|E <key> <pid> <time>`` to the journal named
by ``$FLOW_JOURNAL`` as it begins and ends (one ``O_APPEND`` write each, kept whole even when
the writer is SIGKILLed), so a test can see how many of one key ran at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from perdure import Client, Worker, activity, workflow
from perdure.common import RetryPolicy

TASK_QUEUE = "flow"
JOURNAL_ENV = "FLOW_JOURNAL"
KEYED_SECONDS = 0.3
KEYED_TIMEOUT = timedelta(seconds=2)


@activity.defn
async def paced_call(i: int) -> float:
    return activity.info().started_time.timestamp()


def _journal(mark: str, key: str) -> None:
    path = os.environ.get(JOURNAL_ENV)
    if path is None:
        return
    line = f"{mark} {key} {os.getpid()} {time.time():.6f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@activity.defn
async def keyed_work(key: str) -> str:
    _journal("B", key)
    await asyncio.sleep(KEYED_SECONDS)
    _journal("E", key)
    return key


@workflow.defn
class PacedFanOut:
    @workflow.run
    async def run(self, n: int) -> list[float]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        paced_call, i, start_to_close_timeout=timedelta(seconds=30)
                    )
                    for i in range(n)
                )
            )
        )


@workflow.defn
class KeyedFanOut:
    @workflow.run
    async def run(self, keys: list[str]) -> list[str]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(
                        keyed_work,
                        key,
                        concurrency_key=key,
                        start_to_close_timeout=KEYED_TIMEOUT,
                        retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
                    )
                    for key in keys
                )
            )
        )


def max_in_window(times: list[float], width: float = 1.0) -> int:
    """The most of ``times`` that fall in any window ``width`` seconds long."""
    times = sorted(times)
    most, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= width:
            first += 1
        most = max(most, last - first + 1)
    return most


def journal(path: str) -> list[tuple[str, str, int, float]]:
    """The journal as (B or E, key, pid, time); [] if not written yet."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        mark, key, pid, at = line.split()
        out.append((mark, key, int(pid), float(at)))
    return out


def most_at_once(entries: list[tuple[str, str, int, float]], key: str) -> int:
    """The most attempts of ``key`` between their B and E at any moment. An attempt with no
    E (its worker was killed) holds its slot until its lease expires, ``KEYED_TIMEOUT`` after
    it was leased: it counts from its B until then (less a margin for the time between the
    lease and the B line). A killed worker's unended attempts are taken to be its last ones
    (which ends them latest: the strictest reading)."""
    mine = [(mark, pid, at) for mark, k, pid, at in entries if k == key]
    marks = [(at, mark) for mark, _, at in mine]
    lease = KEYED_TIMEOUT.total_seconds() - 0.05
    for pid in {pid for _, pid, _ in mine}:
        begins = sorted(at for mark, p, at in mine if p == pid and mark == "B")
        unended = len(begins) - sum(1 for mark, p, _ in mine if p == pid and mark == "E")
        marks += [(at + lease, "E") for at in begins[len(begins) - unended :]]
    level = most = 0
    for _, mark in sorted(marks, key=lambda m: (m[0], m[1] == "B")):
        level += 1 if mark == "B" else -1
        most = max(most, level)
    return most


def spawn(url: str, args: list[str], log_path: str) -> subprocess.Popen[bytes]:
    """A worker process running this app on ``url`` (``args``: --rate, --per-key)."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, os.path.join(here, "flow_app.py"), url, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": path},
        )


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        p.wait(10)


async def _main(url: str, rate: float | None, per_key: int | None) -> None:
    client = await Client.connect(url)
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[PacedFanOut, KeyedFanOut],
        activities=[paced_call, keyed_work],
        max_task_queue_activities_per_second=rate,
        max_concurrent_activities_per_key=per_key,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with worker:
        print("ready", flush=True)
        await stop.wait()
    await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--rate", type=float)
    parser.add_argument("--per-key", type=int)
    a = parser.parse_args()
    asyncio.run(_main(a.url, a.rate, a.per_key))
