"""The latest run of a workflow id (describe, result() and history without a run id, the
start's id reuse policy) is the one created last, whatever the clocks said: a clock set back
between two runs (an NTP step; a second machine with a slower clock on the same PostgreSQL)
made the older run the latest, and ``result()`` gave the previous run's outcome (issue 17).
On SQLite the lookup is one seek of ``executions_latest``, however many runs the id has."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from perdure._common.clock import VirtualClock
from perdure._errors import WorkflowAlreadyStartedError
from perdure._store import open_store
from perdure._store._sqlite_tx import LATEST_EXECUTION_SQL
from perdure._store._types import StartWorkflowRequest
from perdure.common import WorkflowIDReusePolicy

T = 1_000_000.0


def request(
    policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
) -> StartWorkflowRequest:
    return StartWorkflowRequest(
        namespace="default",
        workflow_id="X",
        workflow_type="W",
        task_queue="q",
        input=[],
        run_id=str(uuid.uuid4()),
        id_reuse_policy=policy,
    )


async def start_and_close(db_url: str, now: float) -> str:
    """A run of X started and terminated by a store whose clock reads ``now``."""
    store = open_store(db_url, VirtualClock(now))
    try:
        run_id = (await store.start_workflow(request())).run_id
        await store.terminate("default", "X", None, "done", "test")
        return run_id
    finally:
        await store.close()


async def test_the_latest_run_is_the_one_started_last_when_the_clock_went_back(
    db_url: str,
) -> None:
    first = await start_and_close(db_url, T)
    # The next run's store reads a second earlier: its run starts "before" the first.
    second = await start_and_close(db_url, T - 1.0)
    assert first != second
    store = open_store(db_url, VirtualClock(T - 0.5))
    try:
        latest = await store.describe("default", "X", None)
        assert latest.run_id == second
        assert latest.start_time == T - 1.0
        # The id reuse policy judges the latest run too (and names it).
        with pytest.raises(WorkflowAlreadyStartedError) as refused:
            await store.start_workflow(request(WorkflowIDReusePolicy.REJECT_DUPLICATE))
        assert refused.value.run_id == second
        # A third run, started between the two by the clock, is the latest once created.
        third = (await store.start_workflow(request())).run_id
        await store.terminate("default", "X", third, "done", "test")
        assert (await store.describe("default", "X", None)).run_id == third
    finally:
        await store.close()


async def test_sqlite_finds_the_latest_run_with_one_index_seek(tmp_path: Path) -> None:
    path = tmp_path / "latest.db"
    store = open_store(f"sqlite:///{path}", VirtualClock(T))
    try:
        for _ in range(20):  # a cron-like id with many runs
            await store.start_workflow(request())
            await store.terminate("default", "X", None, "done", "test")
        last = (await store.start_workflow(request())).run_id
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        args = ("default", "X")
        plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + LATEST_EXECUTION_SQL, args)]
        found = conn.execute(LATEST_EXECUTION_SQL, args).fetchone()
    finally:
        conn.close()
    assert last in found
    assert any("USING INDEX executions_latest (namespace=? AND workflow_id=?)" in p for p in plan)
    assert not any("TEMP B-TREE" in p for p in plan), plan
