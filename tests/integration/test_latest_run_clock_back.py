"""A handle without a run id reaches the run of the id started last, even when the clock was
set back between the two runs (issue 17): two time-skipping environments on one SQLite file,
the second a second behind the first. Before, the newer run looked older and
``get_workflow_handle(id).result()`` returned the previous run's result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from perdure import workflow
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, x: str) -> str:
        return x


async def test_handle_result_is_the_last_started_run_after_the_clock_went_back(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    t0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    for start, value in ((t0, "first"), (t0 - timedelta(seconds=1), "second")):
        env = await WorkflowEnvironment.start_time_skipping(url=url, start_time=start)
        try:
            async with Worker(env.client, task_queue="q", workflows=[Echo]):
                handle = await env.client.start_workflow(Echo.run, value, id="x", task_queue="q")
                assert await handle.result() == value
                latest = env.client.get_workflow_handle("x")
                assert await latest.result() == value
                assert (await latest.describe()).run_id == handle.result_run_id
        finally:
            await env.shutdown()
