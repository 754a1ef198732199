"""Payload limits through the engine: refused at the caller, never retried forever."""

from __future__ import annotations

from datetime import timedelta

import pytest

from perdure import Worker, activity, workflow
from perdure.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowNotFoundError
from perdure.exceptions import ActivityError, ApplicationError, PayloadSizeError, RetryState
from perdure.testing import WorkflowEnvironment

HUGE = "x" * (3 * 1024 * 1024)


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, text: str) -> int:
        return len(text)


async def test_an_oversized_argument_is_refused_before_anything_is_stored(
    env: WorkflowEnvironment,
) -> None:
    with pytest.raises(PayloadSizeError, match=r"arguments of workflow 'Echo'.*pass a reference"):
        await env.client.start_workflow(Echo.run, HUGE, id="big", task_queue="q")
    with pytest.raises(WorkflowNotFoundError):
        await env.client.get_workflow_handle("big").describe()


@activity.defn
async def produce() -> str:
    return HUGE


@workflow.defn
class Consumer:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity(produce, start_to_close_timeout=timedelta(seconds=5))
        except ActivityError as err:
            assert isinstance(err.cause, ApplicationError)
            return f"{err.retry_state.name if err.retry_state else ''}: {err.cause.message}"
        return "no error"


async def test_an_oversized_activity_result_fails_once_not_forever(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Consumer], activities=[produce]):
        result = await env.client.execute_workflow(Consumer.run, id="c", task_queue="q")
    assert result.startswith(RetryState.NON_RETRYABLE_FAILURE.name)
    assert "result of activity 'produce'" in result


@workflow.defn
class Bloated:
    @workflow.run
    async def run(self) -> str:
        return "y" * (3 * 1024 * 1024)


async def test_an_oversized_workflow_result_fails_the_task_visibly(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Bloated]):
        handle = await env.client.start_workflow(Bloated.run, id="b", task_queue="q")
        await env.sleep(0)
        description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    failure = description.last_workflow_task_failure
    assert failure is not None and "result of workflow 'Bloated'" in failure.message
    await handle.terminate("test over")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
