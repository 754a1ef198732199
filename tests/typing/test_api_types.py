"""The public API's static types, checked by mypy --strict (this file is in mypy's files)
and run as a test, so a change that loses a type is caught."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, assert_type

from perdure import Worker, activity, workflow
from perdure.client import WorkflowExecutionStatus, WorkflowHistory
from perdure.common import RetryPolicy, SearchAttributeKey, TypedSearchAttributes
from perdure.testing import WorkflowEnvironment


@activity.defn
async def double(x: int) -> int:
    return x * 2


@workflow.defn
class Typed:
    def __init__(self) -> None:
        self.total = 0

    @workflow.run
    async def run(self, x: int) -> int:
        assert_type(workflow.now(), datetime)
        assert_type(workflow.info().workflow_id, str)
        assert_type(workflow.patched("p"), bool)
        handle = workflow.start_activity(double, x, start_to_close_timeout=timedelta(seconds=5))
        assert_type(handle, workflow.ActivityHandle[Any])
        self.total = await handle
        await workflow.wait_condition(lambda: self.total > 0)
        return self.total

    @workflow.update
    def add(self, n: int) -> int:
        self.total += n
        return self.total

    @add.validator
    def check_add(self, n: int) -> None:
        if n < 0:
            raise ValueError("no negative amounts")

    @workflow.query
    def current(self) -> int:
        return self.total


async def test_public_types_hold_at_run_time() -> None:
    tier = SearchAttributeKey.for_keyword("Tier")
    assert_type(tier, SearchAttributeKey[str])
    assert_type(RetryPolicy().backoff(1), float)
    env = await WorkflowEnvironment.start_time_skipping()
    async with env, Worker(env.client, task_queue="q", workflows=[Typed], activities=[double]):
        handle = await env.client.start_workflow(
            Typed.run, 21, id="typed", task_queue="q", search_attributes=TypedSearchAttributes()
        )
        assert await handle.result() == 42
        description = await handle.describe()
        assert_type(description.status, WorkflowExecutionStatus)
        assert_type(await handle.fetch_history(), WorkflowHistory)
        assert description.status == WorkflowExecutionStatus.COMPLETED
