"""Three ``perdure worker`` processes share one PostgreSQL database and a schedule that acts
every second for 20 seconds; one worker is killed with SIGKILL halfway. Every slot starts
its workflow exactly once: the firing of a slot and the start of its workflow are one
transaction, which the other processes skip while one holds the schedule, and which a
killed process's connection takes back with it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pg_schedule_app as app
import pytest

from perdure.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    WorkflowExecutionStatus,
)

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]

PERDURE = str(Path(sys.executable).parent / "perdure")
HERE = Path(__file__).parent
WORKERS = 3
LEAD = 3.0  # seconds from creating the schedule to its first slot: the workers start meanwhile
SLOTS = 20


class Workers:
    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self) -> None:
        path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
        with open(self.tmp_path / f"worker{len(self.procs)}.log", "wb") as log:
            self.procs.append(
                subprocess.Popen(
                    [PERDURE, "worker", "--db", self.url, "-q", app.TASK_QUEUE, "pg_schedule_app"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.tmp_path,
                    env={**os.environ, "PYTHONPATH": path},
                )
            )

    def logs(self) -> str:
        return "\n".join(
            f"--- worker {i} ---\n" + (self.tmp_path / f"worker{i}.log").read_text()[-3000:]
            for i in range(len(self.procs))
        )

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def workers(tmp_path: Path, postgres_url: str) -> Iterator[Workers]:
    w = Workers(tmp_path, postgres_url)
    try:
        yield w
    finally:
        w.stop_all()


@pytest.fixture
async def client(postgres_url: str) -> AsyncIterator[Client]:
    c = await Client.connect(postgres_url)
    try:
        yield c
    finally:
        await c.close()


async def test_every_slot_starts_once_across_workers_one_killed(
    workers: Workers, client: Client
) -> None:
    first = datetime.fromtimestamp(int(time.time() + LEAD) + 1, UTC)
    last = first + timedelta(seconds=SLOTS - 1)
    handle = await client.create_schedule(
        "tick",
        Schedule(
            action=ScheduleActionStartWorkflow(app.Tick.run, id="tick", task_queue=app.TASK_QUEUE),
            spec=ScheduleSpec(
                intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))],
                start_at=first,
                end_at=last,
            ),
            # Every slot starts whatever still runs: a skip would hide nothing, but count.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
        ),
    )
    for _ in range(WORKERS):
        workers.spawn()
    victim = workers.procs[0]
    # Halfway through, kill a worker (whatever it holds, perhaps the schedule itself).
    await asyncio.sleep(max((first - datetime.now(UTC)).total_seconds(), 0) + SLOTS / 2)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=10) == -signal.SIGKILL
    expected = [f"tick-{(first + timedelta(seconds=i)):%Y-%m-%dT%H:%M:%SZ}" for i in range(SLOTS)]

    deadline = time.monotonic() + SLOTS + 30
    while True:
        query = "TemporalScheduledById = 'tick' AND ExecutionStatus = 'Completed'"
        done = (await client.count_workflows(query)).count
        if done >= SLOTS:
            break
        for proc in workers.procs[1:]:
            if proc.poll() is not None:
                pytest.fail(f"worker {proc.pid} exited\n{workers.logs()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{done} of {SLOTS} slots completed\n{workers.logs()}")
        await asyncio.sleep(0.2)

    runs = [ex async for ex in client.list_workflows("TemporalScheduledById = 'tick'")]
    assert sorted(ex.id for ex in runs) == expected  # one run per slot, no other
    assert {ex.status for ex in runs} == {WorkflowExecutionStatus.COMPLETED}
    info = (await handle.describe()).info
    assert info.num_actions == SLOTS
    assert (info.num_actions_missed_catchup_window, info.num_actions_skipped_overlap) == (0, 0)
    assert info.next_action_times == []
    # No process even tried a slot another had started (the workflow id would have refused it).
    assert "did not start workflow" not in workers.logs()
