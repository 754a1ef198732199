"""Activity heartbeats and timeouts. Heartbeat, start-to-close and schedule-to-close timeouts
fire while an attempt runs: on the real clock, and in the time-skipping environment, whose
clock follows real time while an activity runs. Both are tested, with sub-second timeouts."""

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from perdure import activity, workflow
from perdure.common import RetryPolicy
from perdure.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    TimeoutError,
    TimeoutType,
)
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker

QUEUE = "timeouts"
HANG_LIMIT = 10.0  # real seconds


@dataclass
class Outcome:
    result: Any = None
    retry_state: int | None = None
    cause: str | None = None
    timeout_type: int | None = None
    last_heartbeat_details: list[Any] = field(default_factory=list)
    elapsed: float = 0.0


@activity.defn
async def resumes_from_heartbeat() -> list[Any]:
    info = activity.info()
    if info.attempt == 1:
        activity.heartbeat("step", 1)
        activity.heartbeat("step", 2)
        raise ApplicationError("crashed after step 2")
    return [info.attempt, *info.heartbeat_details]


@activity.defn
async def stops_heartbeating() -> list[Any]:
    info = activity.info()
    if info.attempt == 1:
        activity.heartbeat("progress", info.attempt)
        # Hang without heartbeating; the heartbeat timeout gives up on this attempt (and the
        # worker's shutdown ends it).
        await asyncio.sleep(10)
    return [info.attempt, *info.heartbeat_details]


@activity.defn
async def too_slow() -> str:
    await asyncio.sleep(10)
    return "too late"


@activity.defn
async def hangs() -> str:
    """A step far slower than its timeouts: it runs until cancelled (by its worker's shutdown)."""
    info = activity.info()
    ATTEMPTS.setdefault(info.workflow_id, []).append(info.attempt)
    await asyncio.Event().wait()
    return "too late"


@activity.defn
async def heartbeats_then_hangs() -> str:
    activity.heartbeat("progress", activity.info().attempt)
    await asyncio.Event().wait()
    return "too late"


# Which attempts of `hangs` ran, by workflow id.
ATTEMPTS: dict[str, list[int]] = {}


@activity.defn
async def never_runs() -> str:
    return "ran on a queue nobody polls"


# Each scenario: (activity, execute_activity options).
SCENARIOS: dict[str, tuple[Any, dict[str, Any]]] = {
    "heartbeat-details": (
        resumes_from_heartbeat,
        {"start_to_close_timeout": timedelta(seconds=10)},
    ),
    "heartbeat-retried": (
        stops_heartbeating,
        {
            "start_to_close_timeout": timedelta(seconds=10),
            "heartbeat_timeout": timedelta(milliseconds=500),
            "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        },
    ),
    "heartbeat-once": (
        stops_heartbeating,
        {
            "start_to_close_timeout": timedelta(seconds=10),
            "heartbeat_timeout": timedelta(milliseconds=500),
            "retry_policy": RetryPolicy(maximum_attempts=1),
        },
    ),
    "start-to-close": (
        too_slow,
        {
            "start_to_close_timeout": timedelta(milliseconds=500),
            "retry_policy": RetryPolicy(maximum_attempts=1),
        },
    ),
    "skipping-start-to-close": (
        hangs,
        {
            "start_to_close_timeout": timedelta(milliseconds=300),
            "retry_policy": RetryPolicy(maximum_attempts=2),
        },
    ),
    "skipping-schedule-to-close": (
        hangs,
        {"schedule_to_close_timeout": timedelta(milliseconds=400)},
    ),
    "skipping-heartbeat": (
        heartbeats_then_hangs,
        {
            "start_to_close_timeout": timedelta(hours=1),
            "heartbeat_timeout": timedelta(milliseconds=300),
            "retry_policy": RetryPolicy(maximum_attempts=1),
        },
    ),
    "schedule-to-start": (
        never_runs,
        {
            "task_queue": "nobody-polls-this",
            "schedule_to_start_timeout": timedelta(seconds=5),
            "start_to_close_timeout": timedelta(seconds=10),
        },
    ),
}


@workflow.defn
class RunTimeoutScenario:
    @workflow.run
    async def run(self, scenario: str) -> Outcome:
        fn, options = SCENARIOS[scenario]
        start = workflow.now()
        outcome = Outcome()
        try:
            outcome.result = await workflow.execute_activity(fn, **options)
        except ActivityError as err:
            outcome.retry_state = err.retry_state
            outcome.cause = type(err.cause).__name__
            if isinstance(err.cause, TimeoutError):
                outcome.timeout_type = err.cause.type
                outcome.last_heartbeat_details = list(err.cause.last_heartbeat_details)
        outcome.elapsed = (workflow.now() - start).total_seconds()
        return outcome


async def run_scenario(
    env: WorkflowEnvironment, scenario: str, workflow_id: str | None = None
) -> Outcome:
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[RunTimeoutScenario],
        activities=[
            resumes_from_heartbeat,
            stops_heartbeating,
            too_slow,
            hangs,
            heartbeats_then_hangs,
            never_runs,
        ],
    ):
        handle = await env.client.start_workflow(
            RunTimeoutScenario.run,
            scenario,
            id=workflow_id or f"{scenario}-{uuid.uuid4()}",
            task_queue=QUEUE,
        )
        # A real-time bound, so a hang fails fast instead of at the suite's timeout.
        async with asyncio.timeout(HANG_LIMIT):
            return await handle.result()


async def test_heartbeat_details_reach_the_next_attempt(env: WorkflowEnvironment) -> None:
    outcome = await run_scenario(env, "heartbeat-details")
    # The last details sent by attempt 1, not the first.
    assert outcome.result == [2, "step", 2]


@pytest.mark.realtime
async def test_attempt_that_stops_heartbeating_is_retried(real_env: WorkflowEnvironment) -> None:
    outcome = await run_scenario(real_env, "heartbeat-retried")
    assert outcome.cause is None
    assert outcome.result == [2, "progress", 1]


@pytest.mark.realtime
async def test_heartbeat_timeout_with_one_attempt_fails_the_activity(
    real_env: WorkflowEnvironment,
) -> None:
    outcome = await run_scenario(real_env, "heartbeat-once")
    assert outcome.cause == "TimeoutError"
    assert outcome.timeout_type == TimeoutType.HEARTBEAT
    assert outcome.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert outcome.last_heartbeat_details == ["progress", 1]
    assert 0.4 <= outcome.elapsed < 5


@pytest.mark.realtime
async def test_start_to_close_timeout(real_env: WorkflowEnvironment) -> None:
    outcome = await run_scenario(real_env, "start-to-close")
    assert outcome.result is None
    assert outcome.cause == "TimeoutError"
    assert outcome.timeout_type == TimeoutType.START_TO_CLOSE
    assert outcome.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert 0.4 <= outcome.elapsed < 5


async def test_schedule_to_start_timeout_when_nobody_polls(env: WorkflowEnvironment) -> None:
    outcome = await run_scenario(env, "schedule-to-start")
    assert outcome.result is None
    assert outcome.cause == "TimeoutError"
    assert outcome.timeout_type == TimeoutType.SCHEDULE_TO_START
    # A schedule-to-start timeout is not retried.
    assert outcome.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert outcome.elapsed == pytest.approx(5.0, abs=0.5)


# The time-skipping environment: its clock follows real time while an activity runs, so the
# timeouts of a running attempt fire after their real duration, and skips again afterwards.


@pytest.mark.realtime
async def test_start_to_close_timeout_under_time_skipping(env: WorkflowEnvironment) -> None:
    workflow_id = f"s2c-{uuid.uuid4()}"
    outcome = await run_scenario(env, "skipping-start-to-close", workflow_id)
    assert ATTEMPTS[workflow_id] == [1, 2]
    assert outcome.cause == "TimeoutError"
    assert outcome.timeout_type == TimeoutType.START_TO_CLOSE
    assert outcome.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    # Two attempts of 300 ms each and the backoff of 1 s between them (skipped).
    assert outcome.elapsed >= 1.6


@pytest.mark.realtime
async def test_schedule_to_close_timeout_under_time_skipping(env: WorkflowEnvironment) -> None:
    outcome = await run_scenario(env, "skipping-schedule-to-close")
    assert outcome.cause == "TimeoutError"
    assert outcome.timeout_type == TimeoutType.SCHEDULE_TO_CLOSE
    assert outcome.retry_state == RetryState.TIMEOUT
    assert outcome.elapsed >= 0.4


@pytest.mark.realtime
async def test_heartbeat_timeout_under_time_skipping(env: WorkflowEnvironment) -> None:
    outcome = await run_scenario(env, "skipping-heartbeat")
    assert outcome.cause == "TimeoutError"
    assert outcome.timeout_type == TimeoutType.HEARTBEAT
    assert outcome.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert outcome.last_heartbeat_details == ["progress", 1]
    assert outcome.elapsed >= 0.3


@workflow.defn
class QueuedBehindASlowStep:
    @workflow.run
    async def run(self) -> Outcome:
        # Takes the worker's only activity slot, so the next one stays in the queue.
        slow = workflow.start_activity(hangs, start_to_close_timeout=timedelta(hours=1))
        outcome = Outcome()
        start = workflow.now()
        try:
            await workflow.execute_activity(
                never_runs,
                schedule_to_start_timeout=timedelta(milliseconds=300),
                start_to_close_timeout=timedelta(seconds=10),
            )
        except ActivityError as err:
            outcome.cause = type(err.cause).__name__
            if isinstance(err.cause, TimeoutError):
                outcome.timeout_type = err.cause.type
        outcome.elapsed = (workflow.now() - start).total_seconds()
        slow.cancel()
        with contextlib.suppress(ActivityError):
            await slow
        return outcome


@pytest.mark.realtime
async def test_schedule_to_start_timeout_behind_a_running_activity_under_time_skipping(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[QueuedBehindASlowStep],
        activities=[hangs, never_runs],
        max_concurrent_activities=1,
    ):
        handle = await env.client.start_workflow(
            QueuedBehindASlowStep.run, id=f"queued-{uuid.uuid4()}", task_queue=QUEUE
        )
        async with asyncio.timeout(HANG_LIMIT):
            outcome = await handle.result()
    assert outcome.cause == "TimeoutError"
    assert outcome.timeout_type == TimeoutType.SCHEDULE_TO_START
    assert outcome.elapsed >= 0.3


@activity.defn
async def takes_a_while(heartbeats: bool) -> str:
    for _ in range(6):  # real work, in real time
        if heartbeats:
            activity.heartbeat()
        await asyncio.sleep(0.05)
    return "done"


@workflow.defn
class SlowStepsThenDays:
    @workflow.run
    async def run(self) -> list[float]:
        start = workflow.now()
        marks = []
        for heartbeats in (False, True):
            await workflow.execute_activity(
                takes_a_while, heartbeats, start_to_close_timeout=timedelta(seconds=30)
            )
            marks.append((workflow.now() - start).total_seconds())
        with contextlib.suppress(ActivityError):  # it times out after 300 ms
            await workflow.execute_activity(
                hangs,
                start_to_close_timeout=timedelta(milliseconds=300),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        marks.append((workflow.now() - start).total_seconds())
        await workflow.sleep(timedelta(days=3))
        marks.append((workflow.now() - start).total_seconds())
        return marks


@pytest.mark.realtime
async def test_real_time_passes_while_activities_run_and_days_still_skip(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[SlowStepsThenDays],
        activities=[takes_a_while, hangs],
    ):
        handle = await env.client.start_workflow(
            SlowStepsThenDays.run, id=f"days-{uuid.uuid4()}", task_queue=QUEUE
        )
        # A real-time bound: the three days must be skipped, not waited for.
        async with asyncio.timeout(HANG_LIMIT):
            quiet, heartbeating, timed_out, at_end = await handle.result()
    # An attempt that ends before anything comes due leaves the clock where it was...
    assert quiet == 0.0
    # ...one that heartbeats or times out moves it by the real time it took.
    assert heartbeating > 0.0
    assert timed_out >= heartbeating + 0.3
    assert at_end >= timed_out + 3 * 86_400
