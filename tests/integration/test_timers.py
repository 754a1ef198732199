"""Timers are durable: recorded in history, fired by the engine, on the virtual clock."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from perdure import Worker, workflow
from perdure.client import WorkflowHandle
from perdure.testing import WorkflowEnvironment

THIRTY_DAYS = timedelta(days=30)


async def drain(env: WorkflowEnvironment) -> None:
    """Let the engine do everything that is due now, without moving the virtual clock."""
    await env.sleep(0)


async def event_types(handle: WorkflowHandle) -> list[str]:
    return [str(e.event_type) for e in (await handle.fetch_history()).events]


@workflow.defn
class LongSleep:
    @workflow.run
    async def run(self, use_asyncio: bool) -> float:
        before = workflow.now()
        if use_asyncio:
            await asyncio.sleep(THIRTY_DAYS.total_seconds())
        else:
            await workflow.sleep(THIRTY_DAYS)
        return (workflow.now() - before).total_seconds()


@pytest.mark.parametrize("use_asyncio", [False, True], ids=["workflow.sleep", "asyncio.sleep"])
async def test_thirty_day_sleep_completes_instantly_and_advances_workflow_now(
    env: WorkflowEnvironment, use_asyncio: bool
) -> None:
    started_at = await env.get_current_time()
    wall = time.monotonic()
    async with Worker(env.client, task_queue="q", workflows=[LongSleep]):
        handle = await env.client.start_workflow(LongSleep.run, use_asyncio, id="s", task_queue="q")
        slept = await handle.result()

    assert slept == pytest.approx(THIRTY_DAYS.total_seconds(), abs=1)
    assert await env.get_current_time() - started_at >= THIRTY_DAYS
    assert time.monotonic() - wall < 10
    types = await event_types(handle)
    assert types.count("TimerStarted") == 1
    assert types.count("TimerFired") == 1


@workflow.defn
class ConcurrentTimers:
    @workflow.run
    async def run(self) -> list[tuple[str, float]]:
        start = workflow.now()
        woke: list[tuple[str, float]] = []

        async def nap(label: str, seconds: float) -> None:
            await workflow.sleep(seconds)
            woke.append((label, (workflow.now() - start).total_seconds()))

        # Started in an order different from the order they are due in.
        await asyncio.gather(nap("c", 300), nap("a", 100), nap("b", 200), nap("d", 400))
        return woke


async def test_concurrent_timers_fire_in_due_order(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[ConcurrentTimers]):
        handle = await env.client.start_workflow(ConcurrentTimers.run, id="t", task_queue="q")
        woke = await handle.result()

    assert [tuple(w) for w in woke] == [("a", 100), ("b", 200), ("c", 300), ("d", 400)]
    types = await event_types(handle)
    assert types.count("TimerStarted") == 4
    assert types.count("TimerFired") == 4


@workflow.defn
class WaitForSignalEvent:
    def __init__(self) -> None:
        self.event = asyncio.Event()

    @workflow.run
    async def run(self, timeout_seconds: float) -> tuple[str, float]:
        start = workflow.now()
        try:
            await asyncio.wait_for(self.event.wait(), timeout_seconds)
            outcome = "event"
        except TimeoutError:
            outcome = "timeout"
        return outcome, (workflow.now() - start).total_seconds()

    @workflow.signal
    def fire(self) -> None:
        self.event.set()


async def test_wait_for_on_signal_event_times_out(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[WaitForSignalEvent]):
        handle = await env.client.start_workflow(
            WaitForSignalEvent.run, 3600.0, id="w", task_queue="q"
        )
        outcome, waited = await handle.result()

    assert outcome == "timeout"
    assert waited == pytest.approx(3600, abs=1)
    assert "TimerFired" in await event_types(handle)


async def test_wait_for_on_signal_event_returns_when_signalled(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[WaitForSignalEvent]):
        handle = await env.client.start_workflow(
            WaitForSignalEvent.run, 3600.0, id="w", task_queue="q"
        )
        await drain(env)  # the workflow is now waiting, its timeout timer started
        assert "TimerStarted" in await event_types(handle)
        await env.sleep(60)
        await handle.signal(WaitForSignalEvent.fire)
        outcome, waited = await handle.result()

    assert outcome == "event"
    assert waited == pytest.approx(60, abs=1)
    types = await event_types(handle)
    assert "TimerFired" not in types
    assert "TimerCanceled" in types


@workflow.defn
class ConditionWithTimeout:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> tuple[str, float]:
        start = workflow.now()
        try:
            await workflow.wait_condition(lambda: self.done, timeout=timedelta(hours=2))
            outcome = "condition"
        except TimeoutError:
            outcome = "timeout"
        return outcome, (workflow.now() - start).total_seconds()

    @workflow.signal
    def finish(self) -> None:
        self.done = True


async def test_wait_condition_timeout_raises_timeout_error(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[ConditionWithTimeout]):
        outcome, waited = await env.client.execute_workflow(
            ConditionWithTimeout.run, id="c", task_queue="q"
        )

    assert outcome == "timeout"
    assert waited == pytest.approx(7200, abs=1)


async def test_wait_condition_met_before_timeout(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[ConditionWithTimeout]):
        handle = await env.client.start_workflow(ConditionWithTimeout.run, id="c", task_queue="q")
        await drain(env)
        await env.sleep(600)
        await handle.signal(ConditionWithTimeout.finish)
        outcome, waited = await handle.result()

    assert outcome == "condition"
    assert waited == pytest.approx(600, abs=1)


@workflow.defn
class CancelsItsTimer:
    @workflow.run
    async def run(self) -> str:
        long_nap = asyncio.ensure_future(workflow.sleep(timedelta(days=1)))
        await workflow.sleep(60)
        long_nap.cancel()
        try:
            await long_nap
        except asyncio.CancelledError:
            return "cancelled"
        return "slept"


async def test_cancelled_timer_records_timer_canceled(env: WorkflowEnvironment) -> None:
    started_at = await env.get_current_time()
    async with Worker(env.client, task_queue="q", workflows=[CancelsItsTimer]):
        handle = await env.client.start_workflow(CancelsItsTimer.run, id="x", task_queue="q")
        assert await handle.result() == "cancelled"

    events = (await handle.fetch_history()).events
    started = [e for e in events if e.event_type == "TimerStarted"]
    fired = [e for e in events if e.event_type == "TimerFired"]
    canceled = [e for e in events if e.event_type == "TimerCanceled"]
    assert sorted(e.attributes["duration"] for e in started) == [60, 86400]
    day_timer = next(e for e in started if e.attributes["duration"] == 86400)
    minute_timer = next(e for e in started if e.attributes["duration"] == 60)
    assert [e.attributes["seq"] for e in fired] == [minute_timer.attributes["seq"]]
    assert len(canceled) == 1
    assert canceled[0].attributes["seq"] == day_timer.attributes["seq"]
    assert canceled[0].attributes["started_event_id"] == day_timer.event_id
    # The cancelled day-long timer did not hold the workflow (or the clock) up.
    assert await env.get_current_time() - started_at < timedelta(hours=1)


@workflow.defn
class Nap:
    @workflow.run
    async def run(self) -> float:
        before = workflow.now()
        await workflow.sleep(timedelta(hours=1))
        return (workflow.now() - before).total_seconds()


async def test_timer_fires_after_the_worker_is_replaced(env: WorkflowEnvironment) -> None:
    first = Worker(env.client, task_queue="q", workflows=[Nap])
    async with first:
        handle = await env.client.start_workflow(Nap.run, id="n", task_queue="q")
        await drain(env)
        assert "TimerStarted" in await event_types(handle)
    assert not first.is_running

    async with Worker(env.client, task_queue="q", workflows=[Nap]):
        slept = await handle.result()

    assert slept == pytest.approx(3600, abs=1)
    types = await event_types(handle)
    assert types.count("TimerStarted") == 1
    assert types.count("TimerFired") == 1
