"""The app that test_postgres_workers.py runs in ``perdure worker`` processes on PostgreSQL.

Each ``Chain`` workflow runs three activities one after another. Every activity attempt
appends ``B <workflow_id> <activity> <attempt> <pid>`` to the journal named by
``$PG_WORKERS_JOURNAL`` as it begins and an ``E`` line as it returns, so the test can count
how often each activity really ran and see what a killed worker had in flight. Each line is
one ``O_APPEND`` write, which the kernel keeps whole even when the writer is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

from perdure import activity, workflow
from perdure.common import RetryPolicy

TASK_QUEUE = "pg-workers"
JOURNAL_ENV = "PG_WORKERS_JOURNAL"
# Short leases, so that what a killed worker held moves to the others within seconds; still
# long enough that a busy worker on a loaded 2-core machine does not lose its tasks.
TASK_TIMEOUT = timedelta(seconds=3)
ACTIVITY_TIMEOUT = timedelta(seconds=3)
RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200))
# Long enough that each worker has activities in flight at any moment of the run.
ACTIVITY_SECONDS = 0.2


def journal_lines(path: str) -> list[tuple[str, str, str, int, int]]:
    """The journal as (B or E, workflow_id, activity, attempt, pid); [] if not written yet."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        mark, wid, name, attempt, pid = line.split()
        out.append((mark, wid, name, int(attempt), int(pid)))
    return out


def _journal(mark: str) -> None:
    info = activity.info()
    line = f"{mark} {info.workflow_id} {info.activity_type} {info.attempt} {os.getpid()}\n"
    fd = os.open(os.environ[JOURNAL_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def _step(value: int) -> int:
    _journal("B")
    await asyncio.sleep(ACTIVITY_SECONDS)
    _journal("E")
    return value


@activity.defn
async def increment(value: int) -> int:
    return await _step(value) + 1


@activity.defn
async def double(value: int) -> int:
    return await _step(value) * 2


@activity.defn
async def square(value: int) -> int:
    return await _step(value) ** 2


ACTIVITIES = ("increment", "double", "square")


def expected(value: int) -> int:
    return ((value + 1) * 2) ** 2


@workflow.defn
class Chain:
    """Three activities, each on the result of the one before."""

    @workflow.run
    async def run(self, value: int) -> int:
        for act in (increment, double, square):
            value = await workflow.execute_activity(
                act, value, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=RETRY
            )
        return value
