"""Crash injection: a worker killed at a chosen point, a fresh one taking over there."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from pgutil import fresh_schema

from perdure import activity, workflow
from perdure._common.events import EventType
from perdure.common import RetryPolicy
from perdure.testing import CrashingWorker, CrashPoint, WorkflowEnvironment

RAN: Counter[str] = Counter()
STEP = timedelta(seconds=30)


@activity.defn
async def charge(amount: int) -> str:
    RAN["charge"] += 1
    return f"charged {amount}"


@activity.defn
async def ship(amount: int) -> str:
    RAN["ship"] += 1
    return "shipped"


@workflow.defn
class Order:
    @workflow.run
    async def run(self, amount: int) -> list[str]:
        done = [await workflow.execute_activity(charge, amount, start_to_close_timeout=STEP)]
        await workflow.sleep(60)
        done.append(await workflow.execute_activity(ship, amount, start_to_close_timeout=STEP))
        return done


@pytest.fixture(autouse=True)
def _reset() -> None:
    RAN.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
async def env(request: pytest.FixtureRequest) -> object:
    if request.param == "sqlite":
        async with await WorkflowEnvironment.start_time_skipping() as env:
            yield env
        return
    async with fresh_schema() as url, await WorkflowEnvironment.start_time_skipping(url=url) as env:
        yield env


def completed(history: object, name: str) -> int:
    events = history.events  # type: ignore[attr-defined]
    scheduled = {
        e.event_id: e.attributes["activity_type"]
        for e in events
        if e.event_type is EventType.ACTIVITY_TASK_SCHEDULED
    }
    return sum(
        1
        for e in events
        if e.event_type is EventType.ACTIVITY_TASK_COMPLETED
        and scheduled[e.attributes["scheduled_event_id"]] == name
    )


async def run_order(env: WorkflowEnvironment, point: CrashPoint) -> tuple[list[str], object, int]:
    async with CrashingWorker(
        env.client, crash_at=point, task_queue="q", workflows=[Order], activities=[charge, ship]
    ) as worker:
        handle = await env.client.start_workflow(Order.run, 5, id="o", task_queue="q")
        result = await handle.result()
    return result, await handle.fetch_history(), worker.crashes


async def test_a_crash_before_an_activity_is_recorded_runs_it_again(
    env: WorkflowEnvironment,
) -> None:
    result, history, crashes = await run_order(env, CrashPoint.before_activity_completes(charge))
    assert crashes == 1
    assert result == ["charged 5", "shipped"]
    assert RAN == {"charge": 2, "ship": 1}  # at least once: its first run was lost
    assert completed(history, "charge") == 1  # but recorded once
    events = history.events  # type: ignore[attr-defined]
    started = [e for e in events if e.event_type is EventType.ACTIVITY_TASK_STARTED]
    assert started[0].attributes["attempt"] == 2  # the lost attempt timed out and was retried


async def test_a_crash_after_an_activity_is_recorded_does_not_run_it_again(
    env: WorkflowEnvironment,
) -> None:
    result, history, crashes = await run_order(env, CrashPoint.after_activity_completes("charge"))
    assert crashes == 1
    assert result == ["charged 5", "shipped"]
    assert RAN == {"charge": 1, "ship": 1}
    assert completed(history, "charge") == 1


async def test_a_crash_after_an_event_replays_on_the_fresh_worker(
    env: WorkflowEnvironment,
) -> None:
    # Event 6 is the task after charge completed: it started the 60 s timer.
    result, history, crashes = await run_order(env, CrashPoint.after_event(6))
    assert crashes == 1
    assert result == ["charged 5", "shipped"]
    assert RAN == {"charge": 1, "ship": 1}
    events = history.events  # type: ignore[attr-defined]
    timers = [e for e in events if e.event_type is EventType.TIMER_STARTED]
    assert len(timers) == 1  # the fresh worker replayed the timer, did not start another


async def test_several_crashes(env: WorkflowEnvironment) -> None:
    point = CrashPoint.before_activity_completes(charge, times=3)
    result, history, crashes = await run_order(env, point)
    assert crashes == 3
    assert result == ["charged 5", "shipped"]
    assert RAN["charge"] == 4
    assert completed(history, "charge") == 1


async def test_a_crash_only_for_the_chosen_workflow(env: WorkflowEnvironment) -> None:
    point = CrashPoint.before_activity_completes(charge, workflow_id="b")
    async with CrashingWorker(
        env.client, crash_at=point, task_queue="q", workflows=[Order], activities=[charge, ship]
    ) as worker:
        a = await env.client.start_workflow(Order.run, 1, id="a", task_queue="q")
        assert await a.result() == ["charged 1", "shipped"]
        assert worker.crashes == 0
        b = await env.client.start_workflow(Order.run, 2, id="b", task_queue="q")
        assert await b.result() == ["charged 2", "shipped"]
        assert worker.crashes == 1


async def test_an_activity_with_no_retries_left_fails_as_it_would_after_a_real_crash(
    env: WorkflowEnvironment,
) -> None:
    @workflow.defn(name="OneShot")
    class OneShot:
        @workflow.run
        async def run(self) -> str:
            try:
                return await workflow.execute_activity(
                    charge,
                    1,
                    start_to_close_timeout=STEP,
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
            except Exception as exc:
                return f"failed: {exc.__cause__}"

    point = CrashPoint.before_activity_completes(charge)
    async with CrashingWorker(
        env.client, crash_at=point, task_queue="q", workflows=[OneShot], activities=[charge]
    ):
        result = await env.client.execute_workflow(OneShot.run, id="one", task_queue="q")
    assert result.startswith("failed: ") and "start_to_close" in result.lower()


def test_crash_points_check_their_arguments() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        CrashPoint.after_event(0)
    assert CrashPoint.before_activity_completes(charge).subject == "charge"


async def test_recovery_does_not_wait_for_lease_timeouts(env: WorkflowEnvironment) -> None:
    started = await env.get_current_time()
    await run_order(env, CrashPoint.before_activity_completes(ship))
    # The workflow's own 60 s timer, and not the 30 s start-to-close timeout on top.
    assert (await env.get_current_time() - started) < timedelta(seconds=90)
