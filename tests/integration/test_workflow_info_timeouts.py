"""``workflow.info()`` gives the timeouts the workflow was started with, as Temporal's does
(Temporal's resource_pool sample reads ``run_timeout`` and ``execution_timeout``); continued
runs and retries carry the execution timeout on."""

from __future__ import annotations

from datetime import timedelta

from perdure import Worker, workflow
from perdure.testing import WorkflowEnvironment


@workflow.defn
class Timeouts:
    @workflow.run
    async def run(self, hops: int) -> list[float | None]:
        info = workflow.info()
        if hops:
            workflow.continue_as_new(hops - 1)
        return [
            info.run_timeout.total_seconds() if info.run_timeout else None,
            info.execution_timeout.total_seconds() if info.execution_timeout else None,
            info.task_timeout.total_seconds(),
        ]


async def test_info_has_the_timeouts_the_workflow_was_started_with(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Timeouts]):
        plain = await env.client.execute_workflow(Timeouts.run, 0, id="plain", task_queue="q")
        assert plain == [None, None, 10.0]
        timed = await env.client.execute_workflow(
            Timeouts.run,
            2,
            id="timed",
            task_queue="q",
            run_timeout=timedelta(minutes=5),
            execution_timeout=timedelta(hours=1),
            task_timeout=timedelta(seconds=20),
        )
        # After two continue-as-new hops, the last run still knows the execution's timeout.
        assert timed == [300.0, 3600.0, 20.0]
