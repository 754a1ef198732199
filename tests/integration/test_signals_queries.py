"""Signals reach the workflow in order, exactly once; queries read state and never write."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from perdure import Worker, WorkflowExecutionStatus, workflow
from perdure.client import WorkflowHandle, WorkflowQueryFailedError
from perdure.testing import WorkflowEnvironment


async def drain(env: WorkflowEnvironment) -> None:
    """Let the engine do everything that is due now, without moving the virtual clock."""
    await env.sleep(0)


async def signal_count(handle: WorkflowHandle) -> int:
    events = (await handle.fetch_history()).events
    return sum(1 for e in events if e.event_type == "WorkflowExecutionSignaled")


@workflow.defn
class Collector:
    def __init__(self) -> None:
        self.items: list[int] = []
        self.expected = -1

    @workflow.run
    async def run(self, expected: int) -> list[int]:
        self.expected = expected
        await workflow.wait_condition(lambda: len(self.items) >= expected)
        return self.items

    @workflow.signal
    def add(self, value: int) -> None:
        self.items.append(value)

    @workflow.signal
    async def add_later(self, value: int) -> None:
        await workflow.sleep(timedelta(minutes=5))
        self.items.append(value)

    @workflow.query
    def get_items(self) -> list[int]:
        return self.items

    @workflow.query
    def count(self) -> int:
        return len(self.items)


async def test_fifty_signals_delivered_in_order_exactly_once(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        handle = await env.client.start_workflow(Collector.run, 50, id="c", task_queue="q")
        for i in range(50):
            await handle.signal(Collector.add, i)
        assert await handle.result() == list(range(50))

    assert await signal_count(handle) == 50


async def test_sync_and_async_signal_handlers(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        handle = await env.client.start_workflow(Collector.run, 3, id="c", task_queue="q")
        await handle.signal(Collector.add_later, 1)
        await handle.signal(Collector.add, 2)
        await drain(env)
        # The async handler is waiting on its timer; the sync one already ran.
        assert await handle.query(Collector.get_items) == [2]
        await handle.signal(Collector.add, 3)
        # Handled before the timer is due (on PostgreSQL its task is announced by NOTIFY, which
        # the time-skipping clock does not wait for before it skips to the timer).
        await drain(env)
        assert await handle.query(Collector.get_items) == [2, 3]
        assert await handle.result() == [2, 3, 1]


async def test_signals_sent_before_a_worker_runs_are_delivered(
    env: WorkflowEnvironment,
) -> None:
    handle = await env.client.start_workflow(Collector.run, 3, id="c", task_queue="q")
    for i in (7, 8, 9):
        await handle.signal(Collector.add, i)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        assert await handle.result() == [7, 8, 9]
    assert await signal_count(handle) == 3


@workflow.defn
class LateHandler:
    def __init__(self) -> None:
        self.received: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.sleep(timedelta(minutes=1))
        workflow.set_signal_handler("late", self.received.append)
        await workflow.wait_condition(lambda: len(self.received) >= 3)
        return self.received


async def test_signal_buffered_until_handler_is_registered(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[LateHandler]):
        handle = await env.client.start_workflow(LateHandler.run, id="l", task_queue="q")
        await drain(env)
        await handle.signal("late", "a")
        await handle.signal("late", "b")
        await drain(env)
        # No handler yet: kept, and the workflow is fine.
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        assert description.last_workflow_task_failure is None
        await env.sleep(120)  # the handler is registered; the buffered signals run
        await handle.signal("late", "c")
        assert await handle.result() == ["a", "b", "c"]


async def test_signal_of_unknown_name_does_not_fail_the_workflow(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        handle = await env.client.start_workflow(Collector.run, 1, id="c", task_queue="q")
        await handle.signal("no_such_signal", 42)
        await drain(env)
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        assert description.last_workflow_task_failure is None

        await handle.signal(Collector.add, 1)
        assert await handle.result() == [1]
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_query_returns_current_state(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        handle = await env.client.start_workflow(Collector.run, 3, id="c", task_queue="q")
        await drain(env)
        assert await handle.query(Collector.get_items) == []
        await handle.signal(Collector.add, 10)
        await handle.signal(Collector.add, 20)
        await drain(env)
        assert await handle.query(Collector.get_items) == [10, 20]
        assert await handle.query("count") == 2
        await handle.signal(Collector.add, 30)
        await handle.result()


async def test_unknown_query_fails_the_query_not_the_workflow(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        handle = await env.client.start_workflow(Collector.run, 1, id="c", task_queue="q")
        await drain(env)
        with pytest.raises(WorkflowQueryFailedError, match="no_such_query"):
            await handle.query("no_such_query")

        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        assert description.last_workflow_task_failure is None
        await handle.signal(Collector.add, 5)
        assert await handle.result() == [5]


async def test_queries_never_add_events(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        handle = await env.client.start_workflow(Collector.run, 2, id="c", task_queue="q")
        await handle.signal(Collector.add, 1)
        await drain(env)
        before = await handle.fetch_history()
        length = (await handle.describe()).history_length
        assert length == len(before.events)

        for _ in range(5):
            assert await handle.query(Collector.get_items) == [1]
        with pytest.raises(WorkflowQueryFailedError):
            await handle.query("no_such_query")
        await drain(env)

        assert (await handle.describe()).history_length == length
        assert (await handle.fetch_history()).to_json() == before.to_json()


async def test_query_of_a_completed_workflow(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        handle = await env.client.start_workflow(Collector.run, 2, id="c", task_queue="q")
        await handle.signal(Collector.add, 1)
        await handle.signal(Collector.add, 2)
        assert await handle.result() == [1, 2]
        length = (await handle.describe()).history_length

        assert await handle.query(Collector.get_items) == [1, 2]
        assert await handle.query(Collector.count) == 2
    assert (await handle.describe()).history_length == length


async def test_query_after_the_cache_evicted_the_instance(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Collector], max_cached_workflows=0):
        handle = await env.client.start_workflow(Collector.run, 3, id="c", task_queue="q")
        await handle.signal(Collector.add, 1)
        await drain(env)
        await handle.signal(Collector.add, 2)
        await drain(env)
        assert await handle.query(Collector.get_items) == [1, 2]
        await handle.signal(Collector.add, 3)
        assert await handle.result() == [1, 2, 3]


async def test_a_query_sees_every_signal_sent_before_it(env: WorkflowEnvironment) -> None:
    # Queries are consistent as Temporal's are: the answer holds every event accepted before
    # the query was sent. With two workers, each run's task may go to either, so each one's
    # cached instance is often behind; and no drain between the signal and the query.
    async with (
        Worker(env.client, task_queue="q", workflows=[Collector]),
        Worker(env.client, task_queue="q", workflows=[Collector]),
    ):
        handle = await env.client.start_workflow(Collector.run, 20, id="c", task_queue="q")
        for i in range(20):
            await handle.signal(Collector.add, i)
            assert await handle.query(Collector.get_items) == list(range(i + 1))
        assert await handle.result() == list(range(20))


async def test_a_query_waiting_for_its_worker_does_not_move_the_clock(
    env: WorkflowEnvironment,
) -> None:
    # As in Temporal's test server, only a wait for a result skips time. A query that skipped
    # it would let a timer fire before the query was answered (the async handler's 5 minutes
    # here), so the answer would depend on which came first.
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        handle = await env.client.start_workflow(Collector.run, 2, id="c", task_queue="q")
        await handle.signal(Collector.add_later, 1)
        await drain(env)
    before = await env.get_current_time()
    query = asyncio.create_task(handle.query(Collector.get_items))
    await asyncio.sleep(0.3)  # real time: no worker polls, so the query waits unanswered
    assert await env.get_current_time() == before
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        assert await query == []
        assert await env.get_current_time() == before
        await handle.signal(Collector.add, 2)
        assert await handle.result() == [2, 1]
