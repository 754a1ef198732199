"""``perdure migrate``: 500 workflows in every state moved from SQLite to PostgreSQL finish
there, each correctly, and nothing that had completed runs again; the reverse direction; a
non-empty target is refused; the source is left as it was."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pgutil import fresh_schema

from perdure import Worker, activity, workflow
from perdure._store import open_store
from perdure._store._migrate import MigrationError, migrate
from perdure.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecutionStatus,
    WorkflowUpdateStage,
)
from perdure.common import RetryPolicy
from perdure.exceptions import ApplicationError
from perdure.testing import WorkflowEnvironment

PERDURE = str(Path(sys.executable).parent / "perdure")
N = 100  # workflows per state (the parents' children make up the fifth hundred)
RUNS: collections.Counter[str] = collections.Counter()
MIGRATED = False


@activity.defn
async def count_once(name: str) -> str:
    RUNS[name] += 1
    return name.upper()


@activity.defn
async def flaky(name: str) -> str:
    RUNS[name] += 1
    if not MIGRATED:
        raise ApplicationError("not yet")
    return f"{name} after {activity.info().attempt} attempts"


@workflow.defn
class Counted:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            count_once, name, start_to_close_timeout=timedelta(minutes=1)
        )


@workflow.defn
class Timed:
    @workflow.run
    async def run(self, name: str) -> str:
        done = await workflow.execute_activity(
            count_once, name, start_to_close_timeout=timedelta(minutes=1)
        )
        await workflow.sleep(timedelta(days=1))
        return done


@workflow.defn
class Waiting:
    def __init__(self) -> None:
        self.value: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.value is not None)
        return str(self.value)

    @workflow.signal
    def go(self, value: str) -> None:
        self.value = value


@workflow.defn
class Retrying:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            flaky,
            name,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(initial_interval=timedelta(hours=1)),
        )


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, name: str) -> str:
        child: str = await workflow.execute_child_workflow(Waiting.run, id=f"{name}-child")
        return f"child said {child}"


@workflow.defn
class Updatable:
    def __init__(self) -> None:
        self.released = False
        self.done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "closed"

    @workflow.update
    async def hold(self, value: int) -> int:
        await workflow.wait_condition(lambda: self.released)
        self.done = True
        return value * 2

    @workflow.signal
    def release(self) -> None:
        self.released = True


WORKFLOWS = [Counted, Timed, Waiting, Retrying, Parent, Updatable]
ACTIVITIES = [count_once, flaky]


async def until(predicate: object, what: str) -> None:
    """Wait (bounded, on real time) for a condition the in-process worker brings about."""
    for _ in range(3000):
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


async def set_up(env: WorkflowEnvironment, n: int) -> None:
    """``n`` workflows in each state, then the worker stops (as before a migration)."""
    c = env.client
    async with (
        env.auto_time_skipping_disabled(),
        Worker(c, task_queue="q", workflows=WORKFLOWS, activities=ACTIVITIES),
    ):
        await asyncio.gather(
            *(
                c.execute_workflow(Counted.run, f"c{i}", id=f"c{i}", task_queue="q")
                for i in range(n)
            )
        )
        for wf, prefix, arg in (
            (Timed.run, "t", True),
            (Waiting.run, "s", False),
            (Retrying.run, "r", True),
            (Parent.run, "p", True),
            (Updatable.run, "u", False),
        ):
            await asyncio.gather(
                *(
                    c.start_workflow(wf, f"{prefix}{i}", id=f"{prefix}{i}", task_queue="q")
                    if arg
                    else c.start_workflow(wf, id=f"{prefix}{i}", task_queue="q")
                    for i in range(n)
                )
            )
        await asyncio.gather(
            *(
                c.get_workflow_handle(f"u{i}").start_update(
                    Updatable.hold, i, id="hold", wait_for_stage=WorkflowUpdateStage.ACCEPTED
                )
                for i in range(n)
            )
        )

        async def settled() -> bool:
            timers = all(RUNS[f"t{i}"] == 1 for i in range(n))
            retries = all(RUNS[f"r{i}"] >= 1 for i in range(n))
            children = await c.count_workflows("WorkflowType = 'Waiting'")
            return timers and retries and children.count == 2 * n

        await until(settled, "every workflow to reach its state")


async def finish(env: WorkflowEnvironment, n: int) -> None:
    """Run every workflow to its end on the target, checking each result."""
    c = env.client
    async with Worker(c, task_queue="q", workflows=WORKFLOWS, activities=ACTIVITIES):
        for i in range(n):
            await c.get_workflow_handle(f"s{i}").signal(Waiting.go, f"v{i}")
            await c.get_workflow_handle(f"p{i}-child").signal(Waiting.go, f"k{i}")
            await c.get_workflow_handle(f"u{i}").signal(Updatable.release)
        results = await asyncio.gather(
            *(c.get_workflow_handle(f"{p}{i}").result() for p in "ctsrpu" for i in range(n))
        )
        runs = [(await c.get_workflow_handle(f"u{i}").describe()).run_id for i in range(n)]
        updates = await asyncio.gather(
            *(
                c.get_workflow_handle(f"u{i}", run_id=run).get_update_handle("hold").result()
                for i, run in enumerate(runs)
            )
        )
    expected = [
        *(f"C{i}" for i in range(n)),
        *(f"T{i}" for i in range(n)),
        *(f"v{i}" for i in range(n)),
        *(f"r{i} after 2 attempts" for i in range(n)),
        *(f"child said k{i}" for i in range(n)),
        *("closed" for _ in range(n)),
    ]
    assert results == expected
    assert updates == [2 * i for i in range(n)]
    # Nothing that had completed ran again: each activity that succeeded ran once.
    assert all(RUNS[f"c{i}"] == 1 and RUNS[f"t{i}"] == 1 for i in range(n))
    assert all(RUNS[f"r{i}"] == 2 for i in range(n))


def file_digest(path: Path) -> str:
    """Everything the database holds, as SQL."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    finally:
        conn.close()


async def test_500_workflows_in_every_state_move_from_sqlite_to_postgresql(tmp_path: Path) -> None:
    global MIGRATED
    MIGRATED = False
    RUNS.clear()
    db = tmp_path / "app.db"
    source = await WorkflowEnvironment.start_time_skipping(url=f"sqlite:///{db}")
    try:
        await set_up(source, N)
    finally:
        await source.shutdown()
    before = file_digest(db)
    async with fresh_schema() as url:
        done = subprocess.run(  # noqa: ASYNC221 (nothing else runs meanwhile)
            [PERDURE, "migrate", "--from", f"sqlite:///{db}", "--to", url],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "counts and checksums match" in done.stdout
        assert file_digest(db) == before  # the source is as it was

        MIGRATED = True
        target = await WorkflowEnvironment.start_time_skipping(url=url)
        try:
            assert (await target.client.count_workflows()).count == 7 * N
            await finish(target, N)
        finally:
            await target.shutdown()

        again = subprocess.run(  # noqa: ASYNC221
            [PERDURE, "migrate", "--from", f"sqlite:///{db}", "--to", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 1 and "not empty" in again.stderr


async def test_postgresql_moves_to_sqlite_for_a_local_look(tmp_path: Path) -> None:
    global MIGRATED
    MIGRATED = False
    RUNS.clear()
    async with fresh_schema() as url:
        source = await WorkflowEnvironment.start_time_skipping(url=url)
        try:
            await set_up(source, 3)
            history = await source.client.get_workflow_handle("c1").fetch_history()
            await source.client.create_schedule(
                "nightly",
                Schedule(
                    action=ScheduleActionStartWorkflow("Nightly", id="nightly", task_queue="q"),
                    spec=ScheduleSpec(
                        cron_expressions=["30 2 * * *"], time_zone_name="Europe/Paris"
                    ),
                    state=ScheduleState(paused=True, note="moved with the rest"),
                ),
            )
            schedule = await source.client.get_schedule_handle("nightly").describe()
        finally:
            await source.shutdown()
        db = tmp_path / "copy.db"
        src, dst = open_store(url), open_store(f"sqlite:///{db}")
        try:
            reports = await migrate(src, dst)
        finally:
            await src.close()
            await dst.close()
        assert {r.table: r.rows for r in reports}["executions"] == 7 * 3
        MIGRATED = True
        target = await WorkflowEnvironment.start_time_skipping(url=f"sqlite:///{db}")
        try:
            copied = await target.client.get_workflow_handle("c1").fetch_history()
            assert copied.to_json_dict() == history.to_json_dict()
            moved = await target.client.get_schedule_handle("nightly").describe()
            assert moved.schedule == schedule.schedule
            assert moved.info.next_action_times == schedule.info.next_action_times
            assert (await target.client.get_workflow_handle("c1").describe()).status == (
                WorkflowExecutionStatus.COMPLETED
            )
            await finish(target, 3)
        finally:
            await target.shutdown()


async def test_a_target_with_workflows_is_refused(tmp_path: Path) -> None:
    first = await WorkflowEnvironment.start_time_skipping(url=f"sqlite:///{tmp_path / 'a.db'}")
    second = await WorkflowEnvironment.start_time_skipping(url=f"sqlite:///{tmp_path / 'b.db'}")
    try:
        for env in (first, second):
            await env.client.start_workflow(Waiting.run, id="w", task_queue="q")
        with pytest.raises(MigrationError, match="not empty"):
            await migrate(first.client.store, second.client.store)
    finally:
        await first.shutdown()
        await second.shutdown()
