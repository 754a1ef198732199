"""Local activities: run inside the workflow task, recorded as markers, never re-run on
replay; activities defined as methods."""

from __future__ import annotations

from datetime import timedelta

import pytest

from perdure import Worker, activity, workflow
from perdure.common import RetryPolicy
from perdure.exceptions import ActivityError, ApplicationError, RetryState
from perdure.testing import WorkflowEnvironment
from perdure.worker import Replayer

CALLS: list[str] = []
FAST = RetryPolicy(initial_interval=timedelta(milliseconds=1), maximum_attempts=3)


@activity.defn
async def lookup(key: str) -> str:
    CALLS.append(key)
    if key == "flaky" and activity.info().attempt < 3:
        raise RuntimeError("try again")
    if key == "bad":
        raise ApplicationError("no such key", non_retryable=True)
    return f"{key}={activity.info().is_local}:{activity.info().attempt}"


@workflow.defn
class UsesLocal:
    @workflow.run
    async def run(self, keys: list[str]) -> list[str]:
        out = []
        for key in keys:
            try:
                out.append(
                    await workflow.execute_local_activity(
                        lookup,
                        key,
                        start_to_close_timeout=timedelta(seconds=5),
                        retry_policy=FAST,
                    )
                )
            except ActivityError as err:
                assert err.retry_state is not None
                out.append(f"{key} failed: {err.cause} ({err.retry_state.name})")
            await workflow.sleep(1)
        return out


async def test_local_activities_run_in_the_task_and_are_recorded(
    env: WorkflowEnvironment,
) -> None:
    CALLS.clear()
    # max_cached_workflows=0: every task replays the history; the markers must stop the
    # local activities from running again.
    async with Worker(
        env.client,
        task_queue="q",
        workflows=[UsesLocal],
        activities=[lookup],
        max_cached_workflows=0,
    ):
        result = await env.client.execute_workflow(
            UsesLocal.run, ["a", "flaky", "bad"], id="local", task_queue="q"
        )
        history = await env.client.get_workflow_handle("local").fetch_history()
    assert result == [
        "a=True:1",
        "flaky=True:3",
        f"bad failed: no such key ({RetryState.NON_RETRYABLE_FAILURE.name})",
    ]
    assert CALLS == ["a", "flaky", "flaky", "flaky", "bad"]
    markers = [e for e in history.events if e.event_type.value == "MarkerRecorded"]
    assert [m.attributes["marker_name"] for m in markers] == ["local_activity"] * 3
    assert not any(e.event_type.value == "ActivityTaskScheduled" for e in history.events)
    CALLS.clear()
    await Replayer(workflows=[UsesLocal]).replay_workflow(history)
    assert CALLS == []


class Inventory:
    def __init__(self) -> None:
        self.stock = {"apple": 3}

    @activity.defn
    async def reserve(self, item: str) -> int:
        self.stock[item] -= 1
        return self.stock[item]


@workflow.defn
class Reserve:
    @workflow.run
    async def run(self) -> list[int]:
        first = await workflow.execute_activity_method(
            Inventory.reserve, "apple", start_to_close_timeout=timedelta(seconds=5)
        )
        second = await workflow.execute_local_activity_method(
            Inventory.reserve, "apple", start_to_close_timeout=timedelta(seconds=5)
        )
        return [first, second]


async def test_activities_defined_as_methods(env: WorkflowEnvironment) -> None:
    inventory = Inventory()
    async with Worker(
        env.client, task_queue="q", workflows=[Reserve], activities=[inventory.reserve]
    ):
        assert await env.client.execute_workflow(Reserve.run, id="m", task_queue="q") == [2, 1]
    assert inventory.stock == {"apple": 1}


@workflow.defn
class NoTimeout:
    @workflow.run
    async def run(self) -> str:
        return str(await workflow.execute_local_activity(lookup, "x"))


async def test_a_local_activity_needs_a_timeout(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[NoTimeout], activities=[lookup]):
        handle = await env.client.start_workflow(NoTimeout.run, id="nt", task_queue="q")
        await env.sleep(0)
        failure = (await handle.describe()).last_workflow_task_failure
        assert failure is not None and "start_to_close_timeout" in failure.message
        await handle.terminate()


@pytest.mark.realtime
async def test_slow_local_activities_keep_the_task_lease(real_env: WorkflowEnvironment) -> None:
    @activity.defn(name="slow_lookup")
    async def slow_lookup(key: str) -> str:
        import asyncio

        await asyncio.sleep(1.2)
        return key

    @workflow.defn(name="SlowLocal")
    class SlowLocal:
        @workflow.run
        async def run(self) -> str:
            return str(
                await workflow.execute_local_activity(
                    slow_lookup, "k", start_to_close_timeout=timedelta(seconds=5)
                )
            )

    async with Worker(
        real_env.client, task_queue="q", workflows=[SlowLocal], activities=[slow_lookup]
    ):
        handle = await real_env.client.start_workflow(
            SlowLocal.run, id="slow", task_queue="q", task_timeout=timedelta(seconds=1)
        )
        assert await handle.result() == "k"
        description = await handle.describe()
    assert description.workflow_task_attempt == 0  # the lease never lapsed
