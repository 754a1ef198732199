"""The claim stays one statement on one index with priorities and fairness in it: the
database reads ``tasks_ready`` in the claim's order and stops at the limit, with no sort of
its own (EXPLAIN on both stores, on a queue of 500 tasks of mixed priorities)."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile

import asyncpg  # type: ignore[import-untyped]
from pgutil import fresh_schema

from perdure._common.clock import VirtualClock
from perdure._store import open_store
from perdure._store._postgres_flow import CLAIM_SQL as PG_CLAIM
from perdure._store._sqlite_flow import CLAIM_SQL as SQLITE_CLAIM
from perdure._store._types import StartWorkflowRequest
from perdure.common import Priority
from perdure.common._priority import priority_dict


def request(i: int) -> StartWorkflowRequest:
    priority = Priority(priority_key=1 + i % 5, fairness_key=f"t{i % 7}" if i % 2 else None)
    return StartWorkflowRequest(
        namespace="default",
        workflow_id=f"wf-{i}",
        workflow_type="W",
        task_queue="q",
        input=[],
        run_id=f"run-{i}",
        priority=priority_dict(priority),
    )


async def _fill(url: str) -> None:
    store = open_store(url, VirtualClock(1_000_000.0))
    try:
        for i in range(0, 500, 100):  # started together: group-committed
            await asyncio.gather(*(store.start_workflow(request(j)) for j in range(i, i + 100)))
    finally:
        await store.close()


async def test_sqlite_claims_by_a_range_scan_of_tasks_ready() -> None:
    with tempfile.TemporaryDirectory() as d:
        await _fill(f"sqlite:///{d}/plan.db")
        conn = sqlite3.connect(f"{d}/plan.db")
        conn.execute("ANALYZE")
        params = {"owner": "o", "now": 2e6, "far": 1e18, "ns": "default", "queue": "q"}
        plan = [
            r[3]
            for r in conn.execute(
                "EXPLAIN QUERY PLAN " + SQLITE_CLAIM, {**params, "kind": 1, "limit": 10}
            )
        ]
        conn.close()
    assert any(
        "USING INDEX tasks_ready (namespace=? AND task_queue=? AND kind=?)" in p for p in plan
    ), plan
    assert not any("TEMP B-TREE" in p for p in plan), plan


async def test_postgresql_claims_by_an_ordered_scan_of_tasks_ready() -> None:
    async with fresh_schema() as url:
        await _fill(url)
        conn = await asyncpg.connect(url.split("?")[0])
        try:
            await conn.execute(f'SET search_path TO "{url.rsplit("schema=", 1)[1]}"')
            await conn.execute("ANALYZE tasks")
            rows = await conn.fetch("EXPLAIN " + PG_CLAIM, "o", 2e6, "default", "q", 1, 10)
        finally:
            await conn.close()
    plan = "\n".join(r[0] for r in rows)
    assert "Index Scan using tasks_ready on tasks" in plan, plan
    assert "Sort" not in plan, plan


# RELIABILITY.md section 5's plan guard: the batch sizes workers claim with, on statistics
# gathered while the queue held one task (autovacuum off, so nothing refreshes them): the
# plan a planner that believes the table tiny picks must still be the index's, and the rows
# locked in the CTE.
BATCHES = (1, 10, 100)


async def _one_task(url: str) -> None:
    store = open_store(url, VirtualClock(1_000_000.0))
    try:
        await store.start_workflow(request(10_000))
    finally:
        await store.close()


async def test_postgresql_claim_plan_survives_stale_statistics() -> None:
    async with fresh_schema() as url:
        schema = url.rsplit("schema=", 1)[1]
        await _one_task(url)
        conn = await asyncpg.connect(url.split("?")[0])
        try:
            await conn.execute(f'SET search_path TO "{schema}"')
            await conn.execute("ALTER TABLE tasks SET (autovacuum_enabled = false)")
            await conn.execute("ANALYZE tasks")  # the statistics of a queue of one task
            await _fill(url)
            # 20,000 tasks: copies of the 500 with run ids of their own (a size at which a
            # sequential scan and a sort on every claim would matter).
            cols = [
                r[0]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 "
                    "AND table_name = 'tasks' AND column_name <> 'task_id'",
                    schema,
                )
            ]
            copied = ", ".join("run_id || '-' || g" if c == "run_id" else c for c in cols)
            await conn.execute(
                f"INSERT INTO tasks ({', '.join(cols)}) SELECT {copied} "
                "FROM tasks, generate_series(1, 39) AS g"
            )
            plans = {
                (kind, batch): "\n".join(
                    r[0]
                    for r in await conn.fetch(
                        "EXPLAIN " + PG_CLAIM, "o", 2e6, "default", "q", kind, batch
                    )
                )
                for kind in (1, 2)
                for batch in BATCHES
            }
        finally:
            await conn.close()
    for key, plan in plans.items():
        assert "Index Scan using tasks_ready on tasks" in plan, (key, plan)
        assert "Sort" not in plan, (key, plan)
        # The locking SELECT is a CTE of its own, joined by task id: not an IN (subquery),
        # which the planner may run once per row it updates and lock more than LIMIT rows.
        assert "CTE picked" in plan and "LockRows" in plan, (key, plan)
        assert "SubPlan" not in plan, (key, plan)


async def test_sqlite_claim_plan_survives_stale_statistics() -> None:
    with tempfile.TemporaryDirectory() as d:
        await _one_task(f"sqlite:///{d}/plan.db")
        conn = sqlite3.connect(f"{d}/plan.db")
        conn.execute("ANALYZE")  # the statistics of a queue of one task
        stats = conn.execute("SELECT stat FROM sqlite_stat1 WHERE idx = 'tasks_ready'").fetchall()
        conn.commit()
        conn.close()
        assert stats and stats[0][0].startswith("1 "), stats  # they say: one row
        await _fill(f"sqlite:///{d}/plan.db")
        conn = sqlite3.connect(f"{d}/plan.db")
        params = {"owner": "o", "now": 2e6, "far": 1e18, "ns": "default", "queue": "q"}
        plans = {
            (kind, batch): [
                r[3]
                for r in conn.execute(
                    "EXPLAIN QUERY PLAN " + SQLITE_CLAIM, {**params, "kind": kind, "limit": batch}
                )
            ]
            for kind in (1, 2)
            for batch in BATCHES
        }
        conn.close()
    for key, plan in plans.items():
        assert any(
            "USING INDEX tasks_ready (namespace=? AND task_queue=? AND kind=?)" in p for p in plan
        ), (key, plan)
        assert not any("TEMP B-TREE" in p for p in plan), (key, plan)
