"""Visibility through the client: memo, typed search attributes, list and count queries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from perdure import Worker, workflow
from perdure.client import VisibilityQueryError, WorkflowExecutionStatus, WorkflowFailureError
from perdure.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from perdure.testing import WorkflowEnvironment

TIER = SearchAttributeKey.for_keyword("CustomerTier")
AMOUNT = SearchAttributeKey.for_float("Amount")
TAGS = SearchAttributeKey.for_keyword_list("Tags")
SHIPPED = SearchAttributeKey.for_datetime("ShippedAt")


@workflow.defn
class Order:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, amount: float) -> str:
        workflow.upsert_search_attributes([AMOUNT.value_set(amount), TAGS.value_set(["new"])])
        await workflow.wait_condition(lambda: self.done)
        workflow.upsert_search_attributes(
            [TAGS.value_set(["new", "shipped"]), SHIPPED.value_set(workflow.now())]
        )
        tier = workflow.info().typed_search_attributes.get(TIER)
        return f"{tier}:{amount}"

    @workflow.signal
    def ship(self) -> None:
        self.done = True


@workflow.defn
class Other:
    @workflow.run
    async def run(self) -> None:
        return None


async def ids(env: WorkflowEnvironment, query: str) -> list[str]:
    return [e.id async for e in env.client.list_workflows(query)]


async def test_list_and_count_with_builtin_and_custom_attributes(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Order, Other]):
        handles = {}
        for i, (tier, amount) in enumerate([("gold", 10.0), ("silver", 250.0), ("gold", 99.5)]):
            handles[i] = await env.client.start_workflow(
                Order.run,
                amount,
                id=f"order-{i}",
                task_queue="q",
                search_attributes=TypedSearchAttributes([SearchAttributePair(TIER, tier)]),
                memo={"note": f"n{i}"},
            )
        await env.client.execute_workflow(Other.run, id="other", task_queue="q")
        await env.sleep(0)
        await handles[0].signal(Order.ship)
        assert await handles[0].result() == "gold:10.0"

        assert (await env.client.count_workflows()).count == 4
        assert sorted(await ids(env, "WorkflowType = 'Order'")) == ["order-0", "order-1", "order-2"]
        assert await ids(env, "ExecutionStatus = 'Completed' AND WorkflowType = 'Order'") == [
            "order-0"
        ]
        assert sorted(await ids(env, "CustomerTier = 'gold' AND Amount > 50")) == ["order-2"]
        assert sorted(await ids(env, "Tags = 'shipped' OR Amount >= 250")) == [
            "order-0",
            "order-1",
        ]
        assert await ids(env, "WorkflowId STARTS_WITH 'order-' ORDER BY WorkflowId ASC") == [
            "order-0",
            "order-1",
            "order-2",
        ]
        assert await ids(env, "ShippedAt IS NOT NULL") == ["order-0"]
        since = datetime(2000, 1, 1, tzinfo=UTC).isoformat()
        assert (await env.client.count_workflows(f"StartTime > '{since}'")).count == 4
        listed = [e async for e in env.client.list_workflows("WorkflowId = 'order-0'")]
        assert listed[0].memo == {"note": "n0"}
        assert listed[0].status == WorkflowExecutionStatus.COMPLETED
        assert listed[0].typed_search_attributes.get(TAGS) == ["new", "shipped"]
        assert listed[0].typed_search_attributes.get(AMOUNT) == 10.0
        desc = await handles[1].describe()
        assert desc.typed_search_attributes.get(TIER) == "silver"
        assert len([e async for e in env.client.list_workflows(page_size=2)]) == 4
        assert len([e async for e in env.client.list_workflows(limit=3)]) == 3


async def test_a_bad_query_points_at_the_offending_token(env: WorkflowEnvironment) -> None:
    with pytest.raises(VisibilityQueryError) as info:
        await env.client.count_workflows("WorkflowType = 'A' AND WorkflowTyp = 'B'")
    assert info.value.column == 24
    assert "WorkflowTyp" in str(info.value) and "^" in str(info.value)


@workflow.defn
class Mistyped:
    @workflow.run
    async def run(self) -> None:
        workflow.upsert_search_attributes([SearchAttributeKey.for_int("CustomerTier").value_set(3)])


async def test_a_search_attribute_keeps_its_type(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Mistyped, Other]):
        await env.client.execute_workflow(
            Other.run,
            id="typed",
            task_queue="q",
            search_attributes=TypedSearchAttributes([SearchAttributePair(TIER, "gold")]),
        )
        handle = await env.client.start_workflow(Mistyped.run, id="mistyped", task_queue="q")
        await env.sleep(0)
        failure = (await handle.describe()).last_workflow_task_failure
        assert failure is not None and "registered as Keyword" in failure.message
        await handle.terminate()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
