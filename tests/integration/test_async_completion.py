"""Activities completed from outside the worker, by task token."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from perdure import Worker, activity, workflow
from perdure.client import AsyncActivityCancelledError, AsyncActivityNotFoundError
from perdure.common import RetryPolicy
from perdure.exceptions import ActivityError, ApplicationError
from perdure.testing import WorkflowEnvironment

TOKENS: asyncio.Queue[bytes]


@pytest.fixture(autouse=True)
def fresh_tokens() -> None:
    global TOKENS
    TOKENS = asyncio.Queue()


@activity.defn
async def ask_a_human(question: str) -> str:
    TOKENS.put_nowait(activity.info().task_token)
    activity.raise_complete_async()


@workflow.defn
class Approval:
    @workflow.run
    async def run(self) -> str:
        try:
            return str(
                await workflow.execute_activity(
                    ask_a_human,
                    "ship it?",
                    start_to_close_timeout=timedelta(hours=1),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
            )
        except ActivityError as err:
            return f"failed: {err.cause}"


async def wait_for_token(env: WorkflowEnvironment) -> bytes:
    return await asyncio.wait_for(TOKENS.get(), 10)


async def test_complete_by_token(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Approval], activities=[ask_a_human]):
        handle = await env.client.start_workflow(Approval.run, id="a", task_queue="q")
        token = await wait_for_token(env)
        async_handle = env.client.get_async_activity_handle(task_token=token)
        await async_handle.heartbeat("reading")
        await async_handle.complete("yes")
        assert await handle.result() == "yes"
        with pytest.raises(AsyncActivityNotFoundError):  # already completed
            await async_handle.complete("again")


async def test_fail_by_token(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Approval], activities=[ask_a_human]):
        handle = await env.client.start_workflow(Approval.run, id="b", task_queue="q")
        token = await wait_for_token(env)
        await env.client.get_async_activity_handle(task_token=token).fail(
            ApplicationError("nope", non_retryable=True)
        )
        assert await handle.result() == "failed: nope"


@workflow.defn
class Impatient:
    @workflow.run
    async def run(self) -> str:
        task = workflow.start_activity(
            ask_a_human,
            "anyone?",
            start_to_close_timeout=timedelta(hours=1),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.sleep(60)
        task.cancel()
        try:
            await task
        except ActivityError as err:
            return type(err.cause).__name__
        return "completed"


async def test_cancellation_is_learned_by_heartbeat(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Impatient], activities=[ask_a_human]):
        handle = await env.client.start_workflow(Impatient.run, id="c", task_queue="q")
        token = await wait_for_token(env)
        async_handle = env.client.get_async_activity_handle(task_token=token)
        await env.sleep(61)
        with pytest.raises(AsyncActivityCancelledError):
            await async_handle.heartbeat()
        await async_handle.report_cancellation()
        assert await handle.result() == "CancelledError"


def test_a_bad_token_is_refused_clearly(env: WorkflowEnvironment) -> None:
    with pytest.raises(ValueError, match="Not a perdure activity task token"):
        env.client.get_async_activity_handle(task_token=b"garbage")
