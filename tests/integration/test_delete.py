"""Deleting a workflow run (Temporal's DeleteWorkflowExecution): the run and all it owns go at
once; an open run is terminated first."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from storerows import RUN_TABLES, run_rows

from perdure import Worker, activity, workflow
from perdure.client import (
    AsyncActivityNotFoundError,
    WorkflowExecutionStatus,
    WorkflowNotFoundError,
)
from perdure.common import SearchAttributeKey
from perdure.testing import WorkflowEnvironment

WAIT = 10.0  # real seconds, only as a bound on waiting for the activity's token
TOKENS: asyncio.Queue[bytes]
STAGE = SearchAttributeKey.for_keyword("Stage")


@pytest.fixture(autouse=True)
def fresh_tokens() -> None:
    global TOKENS
    TOKENS = asyncio.Queue()


@activity.defn
async def wait_outside() -> str:
    TOKENS.put_nowait(activity.info().task_token)
    activity.raise_complete_async()


@workflow.defn
class Busy:
    @workflow.run
    async def run(self) -> str:
        workflow.upsert_search_attributes([STAGE.value_set("waiting")])
        sleeping = asyncio.create_task(workflow.sleep(timedelta(hours=1)))
        result = await workflow.execute_activity(
            wait_outside, start_to_close_timeout=timedelta(days=30)
        )
        await sleeping
        return str(result)


@workflow.defn
class Chain:
    @workflow.run
    async def run(self, n: int) -> int:
        if n:
            workflow.continue_as_new(n - 1)
        return n


async def test_deleting_an_open_run_terminates_it_and_leaves_nothing(
    env: WorkflowEnvironment,
) -> None:
    store = env.client._store
    async with Worker(env.client, task_queue="q", workflows=[Busy], activities=[wait_outside]):
        handle = await env.client.start_workflow(Busy.run, id="busy", task_queue="q")
        token = await asyncio.wait_for(TOKENS.get(), WAIT)
        run_id = (await handle.describe()).run_id
        rows = await run_rows(store, run_id)
        assert (rows["tasks"], rows["timers"], rows["search_attributes"]) == (1, 1, 1)
        waiter = asyncio.ensure_future(handle.result())

        await handle.delete()

        assert await run_rows(store, run_id) == dict.fromkeys(RUN_TABLES, 0)
        with pytest.raises(WorkflowNotFoundError):
            await handle.describe()
        with pytest.raises(WorkflowNotFoundError):
            await waiter  # the run it waited for is gone
        with pytest.raises(AsyncActivityNotFoundError):
            await env.client.get_async_activity_handle(task_token=token).complete("late")
        assert (await env.client.count_workflows()).count == 0
        with pytest.raises(WorkflowNotFoundError):
            await handle.delete()


async def test_deleting_a_closed_run_keeps_the_other_runs_of_its_id(
    env: WorkflowEnvironment,
) -> None:
    store = env.client._store
    async with Worker(env.client, task_queue="q", workflows=[Chain]):
        handle = await env.client.start_workflow(Chain.run, 2, id="chain", task_queue="q")
        assert await handle.result() == 0
        first = handle.result_run_id
        assert first is not None
        latest = await env.client.get_workflow_handle("chain").describe()

        await env.client.get_workflow_handle("chain", run_id=first).delete()

        assert await run_rows(store, first) == dict.fromkeys(RUN_TABLES, 0)
        with pytest.raises(WorkflowNotFoundError):
            await env.client.get_workflow_handle("chain", run_id=first).describe()
        assert (await env.client.count_workflows()).count == 2
        # Without a run id, the latest run is the one deleted.
        await env.client.get_workflow_handle("chain").delete()
        assert (await env.client.get_workflow_handle("chain").describe()).run_id != latest.run_id
        assert (
            await env.client.get_workflow_handle("chain").describe()
        ).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
