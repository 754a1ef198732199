"""The fan-out helpers keep the types of what they run: checked by mypy --strict (this file is
in mypy's files) and run as a test."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, assert_type

from perdure import Worker, activity, workflow
from perdure.patterns import (
    FanOutBatch,
    FanOutResult,
    FanOutSummary,
    ItemOutcome,
    map_activity,
    map_activity_in_batches,
    map_child_workflows,
    map_concurrently,
)
from perdure.testing import WorkflowEnvironment

MINUTE = timedelta(minutes=1)


@activity.defn
async def double(x: int) -> int:
    return x * 2


@activity.defn
def shout(text: str) -> str:
    return text.upper()


@activity.defn
async def touch(item: int) -> None:
    pass


@workflow.defn
class Half:
    @workflow.run
    async def run(self, x: int) -> float:
        return x / 2


@workflow.defn
class Typed:
    @workflow.run
    async def run(self) -> list[Any]:
        doubled = await map_activity(double, [1, 2], start_to_close_timeout=MINUTE)
        assert_type(doubled, FanOutResult[int])
        assert_type(doubled.values(), list[int])
        assert_type(doubled.outcomes[0], ItemOutcome[int])
        assert_type(doubled.outcomes[0].value, int | None)
        shouted = await map_activity(shout, ["a"], start_to_close_timeout=MINUTE)
        assert_type(shouted, FanOutResult[str])
        by_name = await map_activity("double", [3], result_type=int, start_to_close_timeout=MINUTE)
        assert_type(by_name, FanOutResult[Any])
        halves = await map_child_workflows(Half.run, [4])
        assert_type(halves, FanOutResult[float])

        async def label(x: int) -> str:
            return f"#{x}"

        labels = await map_concurrently(label, [5])
        assert_type(labels, FanOutResult[str])
        summary = await map_activity_in_batches(touch, 3, start_to_close_timeout=MINUTE)
        assert_type(summary, FanOutSummary)
        return [
            doubled.values(),
            shouted.values(),
            by_name.values(),
            halves.values(),
            labels.values(),
            summary.succeeded,
        ]


async def test_the_helpers_return_what_they_ran() -> None:
    async with (
        await WorkflowEnvironment.start_time_skipping() as env,
        Worker(
            env.client,
            task_queue="typed",
            workflows=[Typed, Half, FanOutBatch],
            activities=[double, shout, touch],
        ),
    ):
        result = await env.client.execute_workflow(Typed.run, id="typed", task_queue="typed")
    assert result == [[2, 4], ["A"], [6], [2.0], ["#5"], 3]
