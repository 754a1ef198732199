"""Racing claimers (RELIABILITY.md section 5), CI tier: four workers, each on a client of its
own (its own connection, as separate processes would have), claim from one task queue at
once. No lease runs out, so every task must be delivered exactly once: the Jepsen
total-queue checker over the activity executions finds nothing lost, duplicated or
unexpected, and each workflow completed once with its reference result.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from harness.auditor import audit
from harness.checker import check_queue
from harness.claimers import race

from perdure import Client, activity, workflow
from perdure.worker import Worker

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]

QUEUE = "race"
WORKFLOWS = 60
WORKERS = 4
# (workflow id, value): every execution of the one activity of each workflow, in any worker.
deliveries: list[tuple[str, int]] = []


@activity.defn
async def deliver(value: int) -> int:
    deliveries.append((activity.info().workflow_id, value))
    return value + 1


@workflow.defn
class Deliver:
    @workflow.run
    async def run(self, value: int) -> int:
        return await workflow.execute_activity(
            deliver, value, start_to_close_timeout=timedelta(seconds=60)
        )


async def test_racing_claimers_deliver_once(db_url: str) -> None:
    deliveries.clear()
    async with AsyncExitStack() as stack:
        clients = [await Client.connect(db_url) for _ in range(WORKERS + 1)]
        for c in clients:
            stack.push_async_callback(c.close)
        starter, worker_clients = clients[0], clients[1:]
        inputs = {f"race-{i}": i for i in range(WORKFLOWS)}
        # Started before any worker runs, so that the workers race for a full queue.
        for wid, value in inputs.items():
            await starter.start_workflow(
                Deliver.run, value, id=wid, task_queue=QUEUE, task_timeout=timedelta(seconds=60)
            )
        for c in worker_clients:
            await stack.enter_async_context(
                Worker(c, task_queue=QUEUE, workflows=[Deliver], activities=[deliver])
            )
        results = await asyncio.wait_for(
            asyncio.gather(*(starter.get_workflow_handle(w).result() for w in inputs)), 90
        )
        assert results == [v + 1 for v in inputs.values()]
        report = check_queue(inputs, deliveries, lambda v: v)
        assert report.valid, report.summary()
        for wid in inputs:
            events = list((await starter.get_workflow_handle(wid).fetch_history()).events)
            assert audit(wid, events, closed=True) == []


async def test_processes_race_with_batches_of_1_10_100(db_url: str, tmp_path: Path) -> None:
    """Three worker processes (claim batches 1, 10 and 100) race for 300 activity tasks all
    queued at once (``harness.claimers``; the long tier races 8 for 100,000): no lease runs
    out, so lost = duplicated = unexpected = 0."""
    report = await race(db_url, tmp_path, tasks=300, processes=3, per_workflow=100)
    assert report.problems == [], report.figures()
    assert report.queue.valid and report.queue.delivered == 300, report.figures()
