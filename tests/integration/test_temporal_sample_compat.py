"""A workflow written the way Temporal's samples write them (imports passed through the
sandbox) runs on perdure unchanged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from perdure import ApplicationError, Worker, WorkflowFailureError, activity, workflow
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


class FailWorkflowException(Exception):
    pass


@workflow.defn(sandboxed=False, failure_exception_types=[FailWorkflowException])
class ResourceUserWorkflow:
    """As Temporal's resource_pool sample declares it: no sandbox, and an exception type of
    its own that fails the workflow."""

    @workflow.run
    async def run(self, iteration_to_fail_after: str | None) -> list[str]:
        used = []
        for iteration in ["first", "second"]:
            used.append(
                await workflow.execute_activity(
                    compose_greeting, iteration, start_to_close_timeout=timedelta(seconds=10)
                )
            )
            if iteration == iteration_to_fail_after:
                raise FailWorkflowException()
        return used


async def test_sandboxed_false_and_failure_exception_types_are_taken(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(
        env.client,
        task_queue="pool",
        workflows=[ResourceUserWorkflow],
        activities=[compose_greeting],
    ):
        completed = await env.client.execute_workflow(
            ResourceUserWorkflow.run, None, id="ok", task_queue="pool"
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await env.client.execute_workflow(
                ResourceUserWorkflow.run, "first", id="fails", task_queue="pool"
            )

    assert len(completed) == 2
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "FailWorkflowException"
