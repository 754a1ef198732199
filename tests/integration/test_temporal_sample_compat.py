"""A workflow written the way Temporal's samples write them (imports passed through the
sandbox) runs on perdure unchanged."""

from __future__ import annotations

from datetime import timedelta

from perdure import Worker, activity, workflow
from perdure.testing import WorkflowEnvironment

with workflow.unsafe.imports_passed_through():
    import json  # in a Temporal sample: the activities module and its dependencies


@activity.defn
async def compose_greeting(name: str) -> str:
    return json.dumps({"greeting": f"Hello, {name}!"})


@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        with workflow.unsafe.sandbox_unrestricted():
            payload = await workflow.execute_activity(
                compose_greeting, name, start_to_close_timeout=timedelta(seconds=10)
            )
        return str(json.loads(payload)["greeting"])


async def test_a_temporal_style_sample_runs(env: WorkflowEnvironment) -> None:
    async with Worker(
        env.client, task_queue="hello", workflows=[GreetingWorkflow], activities=[compose_greeting]
    ):
        result = await env.client.execute_workflow(
            GreetingWorkflow.run, "World", id="hello", task_queue="hello"
        )
    assert result == "Hello, World!"
