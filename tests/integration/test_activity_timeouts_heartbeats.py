"""Activity heartbeats and timeouts. Heartbeat and start-to-close timeouts fire while an
attempt runs, when the virtual clock stands still, so those tests run on the real clock with
sub-second timeouts."""

import asyncio
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


async def run_scenario(env: WorkflowEnvironment, scenario: str) -> Outcome:
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[RunTimeoutScenario],
        activities=[resumes_from_heartbeat, stops_heartbeating, too_slow, never_runs],
    ):
        handle = await env.client.start_workflow(
            RunTimeoutScenario.run, scenario, id=f"{scenario}-{uuid.uuid4()}", task_queue=QUEUE
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
