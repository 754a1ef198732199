"""A worker killed with SIGKILL mid-workflow: a new worker on the same SQLite file finishes
every workflow with the right result, completed activities are not run again, and each
workflow completes exactly once.

The workers run ``crash_app.py`` in subprocesses; the test talks to the same database through
its own Client and counts real activity executions in the journal the activities write.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import crash_app
import pytest

from perdure.client import Client, WorkflowExecutionStatus, WorkflowHandle

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(90)]

APP = Path(__file__).with_name("crash_app.py")
WORKFLOW_IDS = ("wf-0", "wf-1", "wf-2")
# Generous: a loaded 2-core machine may take seconds to start a Python process.
DEADLINE = 30.0


class Workers:
    """Worker subprocesses on one database; whatever is still running is killed at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.db = tmp_path / "crash.db"
        self.journal = tmp_path / "journal.txt"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str) -> subprocess.Popen[bytes]:
        with open(self.tmp_path / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, str(APP), "worker", str(self.db), str(self.journal)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmp_path,
            )
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL, self.logs()

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.returncode is None and proc.poll() is not None:
                pytest.fail(f"worker {name} exited with {proc.returncode}\n{self.logs()}")

    def journal_lines(self) -> list[tuple[str, str, int, int]]:
        return crash_app.journal_lines(str(self.journal))

    def logs(self) -> str:
        parts = []
        for name in self.procs:
            text = (self.tmp_path / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} log ---\n{text[-4000:]}")
        parts.append("--- journal ---\n" + "\n".join(map(str, self.journal_lines())))
        return "\n".join(parts)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    try:
        yield w
    finally:
        w.stop_all()


@pytest.fixture
async def client(workers: Workers) -> AsyncIterator[Client]:
    c = await Client.connect(f"sqlite:///{workers.db}")
    try:
        yield c
    finally:
        await c.close()


async def wait_until(
    workers: Workers, what: str, predicate: Callable[[], bool | Awaitable[bool]]
) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        ok = predicate()
        if inspect.isawaitable(ok):
            ok = await ok
        if ok:
            return
        workers.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {DEADLINE:g}s waiting until {what}\n{workers.logs()}")
        await asyncio.sleep(0.02)


async def start_all(client: Client, timer_seconds: float) -> list[WorkflowHandle[Any]]:
    for i, wid in enumerate(WORKFLOW_IDS):
        await crash_app.start(client, wid, i, timer_seconds)
    return [client.get_workflow_handle(wid) for wid in WORKFLOW_IDS]


async def results(workers: Workers, handles: list[WorkflowHandle[Any]]) -> list[Any]:
    try:
        return await asyncio.wait_for(
            asyncio.gather(*(h.result() for h in handles)), timeout=DEADLINE
        )
    except TimeoutError:
        descriptions = [await h.describe() for h in handles]
        pytest.fail(f"Workflows did not finish: {descriptions}\n{workers.logs()}")


def event_types(history: Any) -> list[str]:
    return [str(e.event_type) for e in history.events]


def completed_activities(history: Any) -> list[str]:
    """Activity types in the order of their ActivityTaskCompleted events."""
    scheduled = {
        e.event_id: e.attributes["activity_type"]
        for e in history.events
        if e.event_type == "ActivityTaskScheduled"
    }
    return [
        scheduled[e.attributes["scheduled_event_id"]]
        for e in history.events
        if e.event_type == "ActivityTaskCompleted"
    ]


def runs_by_activity(
    lines: list[tuple[str, str, int, int]], workflow_id: str
) -> dict[str, list[tuple[int, int]]]:
    """(attempt, pid) of every execution of each activity of one workflow."""
    runs: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    for wid, name, attempt, pid in lines:
        if wid == workflow_id:
            runs[name].append((attempt, pid))
    return runs


async def assert_completed_once(handle: WorkflowHandle[Any], workers: Workers) -> Any:
    """The workflow closed once, as completed, with every activity completed once."""
    history = await handle.fetch_history()
    types = event_types(history)
    assert types.count("WorkflowExecutionCompleted") == 1, (types, workers.logs())
    assert types[-1] == "WorkflowExecutionCompleted", types
    done = completed_activities(history)
    assert sorted(done) == sorted(a.__name__ for a in crash_app.ACTIVITIES), (
        handle.id,
        done,
        workers.logs(),
    )
    assert len(done) == len(set(done)), (handle.id, done)
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    return history


async def test_kill_worker_while_activities_run(workers: Workers, client: Client) -> None:
    first = workers.spawn("worker1")
    handles = await start_all(client, timer_seconds=1.0)

    def all_in_second_activity() -> bool:
        started = {(wid, name) for wid, name, _, _ in workers.journal_lines()}
        return all((wid, "double") in started for wid in WORKFLOW_IDS)

    # `double` only starts once `add_one` completed, and takes a while to run: killing now
    # leaves one completed activity and one in flight in each workflow.
    await wait_until(workers, "every workflow runs its second activity", all_in_second_activity)
    workers.kill("worker1")

    # Nothing runs now: the history is exactly what the dead worker recorded.
    completed_before: dict[str, set[str]] = {}
    for h in handles:
        history = await h.fetch_history()
        assert "WorkflowExecutionCompleted" not in event_types(history)
        assert (await h.describe()).status == WorkflowExecutionStatus.RUNNING
        completed_before[h.id] = set(completed_activities(history))
        assert "add_one" in completed_before[h.id], (h.id, event_types(history))
    lines_before = workers.journal_lines()

    second = workers.spawn("worker2")
    got = await results(workers, handles)
    assert got == [crash_app.expected(i) for i in range(len(handles))]

    lines = workers.journal_lines()
    assert lines[: len(lines_before)] == lines_before
    assert {pid for _, _, _, pid in lines} <= {first.pid, second.pid}, lines
    for h in handles:
        await assert_completed_once(h, workers)
        runs = runs_by_activity(lines, h.id)
        in_flight = []
        for act in crash_app.ACTIVITIES:
            name = act.__name__
            before = [r for r in runs[name] if r[1] == first.pid]
            after = [r for r in runs[name] if r[1] == second.pid]
            context = (h.id, name, runs[name], completed_before[h.id])
            if name in completed_before[h.id]:
                # Completed before the kill: never run again.
                assert len(before) == 1, context
                assert after == [], context
            else:
                # Run once by the new worker, plus at most once by the old one if it was
                # in flight at the kill (started, completion not recorded).
                assert len(after) == 1, context
                assert len(before) <= 1, context
                if before:
                    in_flight.append(name)
                    assert after[0][0] > before[0][0], context
        # The activities run one after another: at most one was in flight.
        assert len(in_flight) <= 1, (h.id, in_flight, runs)


async def test_kill_worker_during_durable_timer(workers: Workers, client: Client) -> None:
    timer_seconds = 2.0
    first = workers.spawn("worker1")
    handles = await start_all(client, timer_seconds=timer_seconds)

    async def all_sleeping() -> bool:
        for h in handles:
            if "TimerStarted" not in event_types(await h.fetch_history()):
                return False
        return True

    await wait_until(workers, "every workflow sleeps on its timer", all_sleeping)
    workers.kill("worker1")
    for h in handles:
        types = event_types(await h.fetch_history())
        assert "TimerFired" not in types, (h.id, types)
        assert set(crash_app.BEFORE_TIMER) <= set(completed_activities(await h.fetch_history()))

    second = workers.spawn("worker2")
    got = await results(workers, handles)
    assert got == [crash_app.expected(i) for i in range(len(handles))]

    lines = workers.journal_lines()
    for h in handles:
        history = await assert_completed_once(h, workers)
        events = {str(e.event_type): e for e in history.events}
        types = event_types(history)
        assert types.count("TimerStarted") == types.count("TimerFired") == 1, types
        # Fired by the new worker, and not before it was due.
        fire_at = events["TimerStarted"].attributes["fire_at"]
        assert events["TimerFired"].event_time >= fire_at, (fire_at, history.events)
        runs = runs_by_activity(lines, h.id)
        for name in crash_app.BEFORE_TIMER:
            assert [pid for _, pid in runs[name]] == [first.pid], (h.id, name, runs)
        for name in crash_app.AFTER_TIMER:
            assert [pid for _, pid in runs[name]] == [second.pid], (h.id, name, runs)
