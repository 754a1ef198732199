"""A workflow app that test_crash_recovery.py runs in worker processes and then kills.

Usage::

    python crash_app.py worker DB JOURNAL        # run a worker until killed
    python crash_app.py start DB WORKFLOW_ID...  # start Pipeline workflows and exit

Every activity attempt appends ``<workflow_id> <activity> <attempt> <pid>`` to JOURNAL
(fsynced) as it begins, so the test can count how many times each activity really ran,
whichever process ran it and however it died.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import timedelta

from perdure import Client, Worker, activity, workflow

TASK_QUEUE = "crash"
# Short leases so that a killed worker's tasks are taken over quickly.
TASK_TIMEOUT = timedelta(seconds=1)
ACTIVITY_TIMEOUT = timedelta(seconds=2)
# Long enough for the test to kill the worker while an activity is running.
ACTIVITY_SECONDS = 0.4

_journal_path: str | None = None


def journal_lines(path: str) -> list[tuple[str, str, int, int]]:
    """The journal as (workflow_id, activity, attempt, pid) tuples; [] if not written yet."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    out = []
    # A line is complete only once its newline is written.
    for line in text.splitlines(keepends=True):
        if line.endswith("\n"):
            wid, name, attempt, pid = line.split()
            out.append((wid, name, int(attempt), int(pid)))
    return out


async def _run_step(value: int) -> int:
    if _journal_path is None:
        raise RuntimeError("crash_app activities run only in `crash_app.py worker` processes")
    info = activity.info()
    line = f"{info.workflow_id} {info.activity_type} {info.attempt} {os.getpid()}\n"
    fd = os.open(_journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    await asyncio.sleep(ACTIVITY_SECONDS)
    return value


@activity.defn
async def add_one(value: int) -> int:
    return await _run_step(value) + 1


@activity.defn
async def double(value: int) -> int:
    return await _run_step(value) * 2


@activity.defn
async def add_ten(value: int) -> int:
    return await _run_step(value) + 10


@activity.defn
async def triple(value: int) -> int:
    return await _run_step(value) * 3


ACTIVITIES = [add_one, double, add_ten, triple]
BEFORE_TIMER = ("add_one", "double")
AFTER_TIMER = ("add_ten", "triple")


def expected(value: int) -> int:
    return ((value + 1) * 2 + 10) * 3


@workflow.defn
class Pipeline:
    """Two activities, a durable timer, two more activities."""

    @workflow.run
    async def run(self, value: int, timer_seconds: float) -> int:
        for act in (add_one, double):
            value = await workflow.execute_activity(
                act, value, start_to_close_timeout=ACTIVITY_TIMEOUT
            )
        await workflow.sleep(timer_seconds)
        for act in (add_ten, triple):
            value = await workflow.execute_activity(
                act, value, start_to_close_timeout=ACTIVITY_TIMEOUT
            )
        return value


async def start(client: Client, workflow_id: str, value: int, timer_seconds: float) -> None:
    await client.start_workflow(
        Pipeline.run,
        args=(value, timer_seconds),
        id=workflow_id,
        task_queue=TASK_QUEUE,
        task_timeout=TASK_TIMEOUT,
    )


async def _worker(db: str, journal: str) -> None:
    global _journal_path
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {os.getpid()} %(message)s")
    _journal_path = journal
    client = await Client.connect(f"sqlite:///{db}")
    worker = Worker(client, task_queue=TASK_QUEUE, workflows=[Pipeline], activities=ACTIVITIES)
    await worker.run()


async def _start(db: str, workflow_ids: list[str]) -> None:
    client = await Client.connect(f"sqlite:///{db}")
    try:
        for i, wid in enumerate(workflow_ids):
            await start(client, wid, i, 1.0)
    finally:
        await client.close()


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "worker":
        asyncio.run(_worker(argv[1], argv[2]))
    elif len(argv) >= 3 and argv[0] == "start":
        asyncio.run(_start(argv[1], argv[2:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
