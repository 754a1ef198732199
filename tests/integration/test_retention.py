"""Retention: closed runs, and all they own, are deleted a namespace's retention period after
they closed, by workers and by the time-skipping clock as it moves; never an open run, nor a
closed run its open parent or chain still needs. Archives are written first when asked."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from storerows import run_rows

from perdure import Worker, workflow
from perdure._operate.history_file import import_file
from perdure.client import (
    FileArchiver,
    WorkflowExecutionStatus,
    WorkflowHistory,
    WorkflowNotFoundError,
)
from perdure.testing import WorkflowEnvironment
from perdure.worker import _retention

DAY = timedelta(days=1)


@workflow.defn
class Quick:
    @workflow.run
    async def run(self, n: int) -> int:
        return n


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self, days: int) -> int:
        await workflow.sleep(timedelta(days=days))
        return days


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, days: int) -> int:
        child = await workflow.execute_child_workflow(Quick.run, 7, id="child")
        await workflow.sleep(timedelta(days=days))
        return child


@workflow.defn
class Chain:
    @workflow.run
    async def run(self, n: int) -> int:
        if n:
            workflow.continue_as_new(n - 1)
        await workflow.sleep(timedelta(days=60))
        return n


async def exists(env: WorkflowEnvironment, workflow_id: str, run_id: str | None = None) -> bool:
    try:
        await env.client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    except WorkflowNotFoundError:
        return False
    return True


async def test_namespace_settings_are_stored_and_default_to_keeping_forever(
    env: WorkflowEnvironment,
) -> None:
    described = await env.client.describe_namespace()
    assert (described.name, described.retention, described.archive_uri) == ("default", None, None)
    updated = await env.client.update_namespace(retention=30 * DAY)
    assert updated.retention == 30 * DAY
    await env.client.update_namespace(archive_uri="file:///var/archive")
    described = await env.client.describe_namespace()
    assert (described.retention, described.archive_uri) == (30 * DAY, "file:///var/archive")
    await env.client.update_namespace(retention=None)
    assert (await env.client.describe_namespace()).retention is None
    with pytest.raises(ValueError, match="positive"):
        await env.client.update_namespace(retention=timedelta(0))


async def test_without_retention_closed_runs_are_kept(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Quick]):
        await env.client.execute_workflow(Quick.run, 1, id="kept", task_queue="q")
    await env.sleep(1000 * DAY)
    assert await exists(env, "kept")


async def test_closed_runs_go_after_the_retention_period_and_open_runs_stay(
    env: WorkflowEnvironment,
) -> None:
    store = env.client.store
    await env.client.update_namespace(retention=30 * DAY)
    async with Worker(env.client, task_queue="q", workflows=[Quick, Sleeper]):
        await env.client.execute_workflow(Quick.run, 1, id="done", task_queue="q")
        run_id = (await env.client.get_workflow_handle("done").describe()).run_id
        waiting = await env.client.start_workflow(Sleeper.run, 90, id="waiting", task_queue="q")

        await env.sleep(29 * DAY)
        assert await exists(env, "done")
        await env.sleep(2 * DAY)

        assert not await exists(env, "done")
        assert set((await run_rows(store, run_id)).values()) == {0}
        assert (await waiting.describe()).status == WorkflowExecutionStatus.RUNNING
        assert await waiting.result() == 90
        # Closed now: it goes 30 days later.
        await env.sleep(31 * DAY)
        assert not await exists(env, "waiting")


async def test_a_closed_child_stays_while_its_parent_is_open(env: WorkflowEnvironment) -> None:
    await env.client.update_namespace(retention=30 * DAY)
    async with Worker(env.client, task_queue="q", workflows=[Parent, Quick]):
        parent = await env.client.start_workflow(Parent.run, 60, id="parent", task_queue="q")
        await env.sleep(45 * DAY)
        assert (await env.client.get_workflow_handle("child").describe()).status == (
            WorkflowExecutionStatus.COMPLETED
        )
        assert await parent.result() == 7
        await env.sleep(31 * DAY)
        assert not await exists(env, "child")
        assert not await exists(env, "parent")


async def test_a_chain_stays_while_its_latest_run_is_open(env: WorkflowEnvironment) -> None:
    await env.client.update_namespace(retention=30 * DAY)
    async with Worker(env.client, task_queue="q", workflows=[Chain]):
        handle = await env.client.start_workflow(Chain.run, 1, id="chain", task_queue="q")
        first = handle.first_execution_run_id
        assert first is not None
        await env.sleep(45 * DAY)
        # The first run closed (continued as new) 45 days ago; the chain is still running.
        assert await exists(env, "chain", first)
        assert await handle.result() == 0
        await env.sleep(31 * DAY)
        assert not await exists(env, "chain", first)
        assert not await exists(env, "chain")


async def test_histories_are_archived_before_deletion_and_can_be_imported_back(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    archiver = FileArchiver(tmp_path / "archive")
    await env.client.update_namespace(retention=30 * DAY, archive_uri=archiver.uri)
    async with Worker(env.client, task_queue="q", workflows=[Quick]):
        handle = await env.client.start_workflow(Quick.run, 5, id="a/b", task_queue="q")
        assert await handle.result() == 5
        history = await handle.fetch_history()
    await env.sleep(31 * DAY)
    assert not await exists(env, "a/b")

    file = archiver.file_of("default", "a/b", history.run_id)
    archived = WorkflowHistory.from_json(None, file.read_bytes())
    assert archived.to_json_dict() == history.to_json_dict()
    ex = await import_file(env.client, file)
    assert (ex.workflow_id, ex.run_id, ex.status) == (
        "a/b",
        history.run_id,
        WorkflowExecutionStatus.COMPLETED,
    )


async def test_an_archiver_that_cannot_be_made_pauses_deletion(env: WorkflowEnvironment) -> None:
    await env.client.update_namespace(retention=30 * DAY, archive_uri="tape://drive-0")
    async with Worker(env.client, task_queue="q", workflows=[Quick]):
        await env.client.execute_workflow(Quick.run, 1, id="kept", task_queue="q")
    await env.sleep(31 * DAY)
    assert await exists(env, "kept")


async def test_the_sweep_deletes_in_small_batches(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_retention, "SWEEP_BATCH", 4)
    async with Worker(env.client, task_queue="q", workflows=[Quick]):
        await asyncio.gather(
            *(
                env.client.execute_workflow(Quick.run, i, id=f"w{i}", task_queue="q")
                for i in range(10)
            )
        )
    await env.client.update_namespace(retention=DAY)
    # Another process moved the clock on (no sweep has run here yet).
    env.client.store.clock.advance_to(env.client.store.clock.now() + 2 * DAY.total_seconds())  # type: ignore[attr-defined]
    sweeper = _retention.RetentionSweeper(env.client.store)
    assert [await sweeper.sweep() for _ in range(4)] == [4, 4, 2, 0]
    assert (await env.client.count_workflows()).count == 0
    assert len(sweeper.stats.batch_seconds) == 3
