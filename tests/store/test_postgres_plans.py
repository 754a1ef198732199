"""The lookups every start makes find their run through the workflow id on PostgreSQL, even
before the planner has statistics (a new database, ANALYZE not yet run): a partial index of
all open runs (``executions_open_by_type``, ``WHERE status = 1``) would be read whole, every
open run of the namespace for each start, which made starts cost more the more runs were
open (7 ms each with 2,000 open). The latest run of an id is one backward index scan too."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from pgutil import fresh_schema

from perdure._common.clock import VirtualClock
from perdure._store import open_store
from perdure._store._postgres_tx import LATEST_EXECUTION_SQL, OPEN_EXECUTION_SQL
from perdure._store._types import StartWorkflowRequest


def request(i: int) -> StartWorkflowRequest:
    return StartWorkflowRequest(
        namespace="default",
        workflow_id=f"wf-{i}",
        workflow_type="W",
        task_queue="q",
        input=[],
        run_id=f"run-{i}",
    )


async def generic_plan(url: str, sql: str, workflow_id: str) -> tuple[list[str], Any]:
    """The plan of ``sql`` (its parameters: the namespace "default" and ``workflow_id``) as a
    prepared statement settles on it after five runs (a generic plan), and its first value."""
    conn = await asyncpg.connect(url.split("?")[0])
    try:
        await conn.execute(f'SET search_path TO "{url.rsplit("schema=", 1)[1]}"')
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        rows = await conn.fetch("EXPLAIN ANALYZE " + sql, "default", workflow_id)
        found = await conn.fetchval(sql, "default", workflow_id)
    finally:
        await conn.close()
    return [r[0].strip() for r in rows], found


async def test_open_run_of_an_id_is_found_by_its_workflow_id_without_statistics() -> None:
    async with fresh_schema() as url:
        store = open_store(url, VirtualClock(1_000_000.0))
        try:
            for i in range(0, 300, 100):
                await asyncio.gather(*(store.start_workflow(request(j)) for j in range(i, i + 100)))
        finally:
            await store.close()
        plan, found = await generic_plan(url, OPEN_EXECUTION_SQL + " FOR UPDATE", "wf-7")
    assert found == "run-7"
    conds = [line for line in plan if line.startswith("Index Cond:")]
    assert conds and "workflow_id" in conds[0], plan
    removed = [line for line in plan if line.startswith("Rows Removed by Filter:")]
    assert all(line.endswith(" 0") for line in removed), plan


async def test_latest_run_of_an_id_is_one_backward_index_scan_without_a_sort() -> None:
    """The latest run of an id is the one created last (highest seq): a backward scan of
    executions_latest stopped at its first row, not every run of the id sorted (a cron
    workflow's thousands), even with a generic plan and no statistics."""
    async with fresh_schema() as url:
        store = open_store(url, VirtualClock(1_000_000.0))
        try:
            await asyncio.gather(*(store.start_workflow(request(j)) for j in range(100)))
            for i in range(30):  # one id, many runs
                last = await store.start_workflow(replace(request(100 + i), workflow_id="cron"))
                await store.terminate("default", "cron", None, "done", "test")
        finally:
            await store.close()
        plan, found = await generic_plan(url, LATEST_EXECUTION_SQL + " FOR UPDATE", "cron")
    assert found == last.run_id
    assert any("Index Scan Backward using executions_latest" in line for line in plan), plan
    assert not any(line.startswith("Sort") or "-> Sort" in line for line in plan), plan
