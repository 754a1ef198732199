"""Activity retries: the retry policy, non-retryable failures, explicit delays, and what the
workflow sees once an activity gives up. Time is virtual: every backoff is skipped at once
and measured exactly."""

import asyncio
import itertools
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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

QUEUE = "retries"

# Start time of each attempt, by workflow id: (attempt, virtual start time).
ATTEMPTS: defaultdict[str, list[tuple[int, datetime]]] = defaultdict(list)


def record_attempt() -> int:
    info = activity.info()
    ATTEMPTS[info.workflow_id].append((info.attempt, info.started_time))
    return info.attempt


def gaps(workflow_id: str) -> list[float]:
    """Seconds between the starts of consecutive attempts."""
    starts = [t for _, t in ATTEMPTS[workflow_id]]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]


class OutOfStock(Exception):
    pass


@activity.defn
async def succeeds_on(attempt_wanted: int) -> str:
    attempt = record_attempt()
    if attempt < attempt_wanted:
        raise ApplicationError(f"attempt {attempt} failed", type="Flaky")
    return f"done on attempt {attempt}"


@activity.defn
async def declines() -> str:
    attempt = record_attempt()
    raise ApplicationError(
        f"card declined on attempt {attempt}", {"code": 42}, "retry later", type="CardDeclined"
    )


@activity.defn
async def declines_for_good() -> str:
    record_attempt()
    raise ApplicationError("card reported stolen", type="Stolen", non_retryable=True)


@activity.defn
async def out_of_stock() -> str:
    record_attempt()
    raise OutOfStock("no widgets left")


@activity.defn
async def asks_for_delay(delay_seconds: float) -> str:
    attempt = record_attempt()
    if attempt == 1:
        raise ApplicationError(
            "rate limited", type="RateLimited", next_retry_delay=timedelta(seconds=delay_seconds)
        )
    return f"done on attempt {attempt}"


@dataclass
class Outcome:
    """What the workflow saw, reduced to plain values."""

    result: str | None = None
    error: str | None = None
    activity_type: str | None = None
    retry_state: int | None = None
    cause: str | None = None
    cause_type: str | None = None
    cause_message: str | None = None
    cause_details: list[Any] = field(default_factory=list)
    timeout_type: int | None = None
    elapsed: float = 0.0


def fast_policy(**kwargs: Any) -> RetryPolicy:
    return RetryPolicy(initial_interval=timedelta(seconds=1), **kwargs)


# Each scenario: (activity, its arguments, execute_activity options).
SCENARIOS: dict[str, tuple[Any, list[Any], dict[str, Any]]] = {
    "default-policy": (succeeds_on, [4], {}),
    "max-attempts": (declines, [], {"retry_policy": fast_policy(maximum_attempts=3)}),
    "non-retryable": (declines_for_good, [], {}),
    "non-retryable-type": (
        declines,
        [],
        {"retry_policy": fast_policy(non_retryable_error_types=["CardDeclined"])},
    ),
    "non-retryable-class-name": (
        out_of_stock,
        [],
        {"retry_policy": fast_policy(non_retryable_error_types=["OutOfStock"])},
    ),
    "next-retry-delay": (asks_for_delay, [30.0], {}),
    "backoff": (
        succeeds_on,
        [7],
        {
            "retry_policy": RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=5),
            )
        },
    ),
    "schedule-to-close": (
        succeeds_on,
        [100],
        {
            "schedule_to_close_timeout": timedelta(seconds=10),
            "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1)),
        },
    ),
    "history": (succeeds_on, [3], {}),
}


@workflow.defn
class RunScenario:
    @workflow.run
    async def run(self, scenario: str) -> Outcome:
        fn, args, options = SCENARIOS[scenario]
        options = {"start_to_close_timeout": timedelta(seconds=10), **options}
        start = workflow.now()
        outcome = Outcome()
        try:
            outcome.result = await workflow.execute_activity(fn, args=args, **options)
        except ActivityError as err:
            outcome.error = type(err).__name__
            outcome.activity_type = err.activity_type
            outcome.retry_state = err.retry_state
            cause = err.cause
            outcome.cause = type(cause).__name__
            if isinstance(cause, ApplicationError):
                outcome.cause_type = cause.type
                outcome.cause_message = cause.message
                outcome.cause_details = list(cause.details)
            if isinstance(cause, TimeoutError):
                outcome.timeout_type = cause.type
        outcome.elapsed = (workflow.now() - start).total_seconds()
        return outcome


async def run_scenario(env: WorkflowEnvironment, scenario: str) -> tuple[Outcome, str]:
    workflow_id = f"{scenario}-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[RunScenario],
        activities=[succeeds_on, declines, declines_for_good, out_of_stock, asks_for_delay],
    ):
        outcome = await env.client.execute_workflow(
            RunScenario.run, scenario, id=workflow_id, task_queue=QUEUE
        )
    return outcome, workflow_id


def attempts(workflow_id: str) -> list[int]:
    return [n for n, _ in ATTEMPTS[workflow_id]]


async def test_default_policy_retries_until_success(env: WorkflowEnvironment) -> None:
    outcome, wf_id = await run_scenario(env, "default-policy")
    assert outcome.result == "done on attempt 4"
    assert attempts(wf_id) == [1, 2, 3, 4]
    # Default policy: 1 s, doubling.
    assert gaps(wf_id) == [1.0, 2.0, 4.0]
    assert outcome.elapsed == pytest.approx(7.0, abs=0.5)


async def test_maximum_attempts_then_activity_error(env: WorkflowEnvironment) -> None:
    outcome, wf_id = await run_scenario(env, "max-attempts")
    assert attempts(wf_id) == [1, 2, 3]
    assert outcome.error == "ActivityError"
    assert outcome.activity_type == "declines"
    assert outcome.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert outcome.cause == "ApplicationError"
    assert outcome.cause_type == "CardDeclined"
    assert outcome.cause_message == "card declined on attempt 3"
    assert outcome.cause_details == [{"code": 42}, "retry later"]


async def test_non_retryable_application_error_stops_at_once(env: WorkflowEnvironment) -> None:
    outcome, wf_id = await run_scenario(env, "non-retryable")
    assert attempts(wf_id) == [1]
    assert outcome.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert outcome.cause == "ApplicationError"
    assert outcome.cause_type == "Stolen"
    assert outcome.cause_message == "card reported stolen"
    assert outcome.elapsed == 0.0


async def test_non_retryable_error_types_match_application_error_type(
    env: WorkflowEnvironment,
) -> None:
    outcome, wf_id = await run_scenario(env, "non-retryable-type")
    assert attempts(wf_id) == [1]
    assert outcome.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert outcome.cause_type == "CardDeclined"


async def test_non_retryable_error_types_match_plain_exception_class_name(
    env: WorkflowEnvironment,
) -> None:
    outcome, wf_id = await run_scenario(env, "non-retryable-class-name")
    assert attempts(wf_id) == [1]
    assert outcome.retry_state == RetryState.NON_RETRYABLE_FAILURE
    # A plain exception reaches the workflow as an ApplicationError named after its class.
    assert outcome.cause == "ApplicationError"
    assert outcome.cause_type == "OutOfStock"
    assert outcome.cause_message == "no widgets left"


async def test_next_retry_delay_overrides_the_policy(env: WorkflowEnvironment) -> None:
    outcome, wf_id = await run_scenario(env, "next-retry-delay")
    assert outcome.result == "done on attempt 2"
    assert gaps(wf_id) == [30.0]
    assert outcome.elapsed == pytest.approx(30.0, abs=0.5)


async def test_backoff_grows_by_coefficient_up_to_maximum_interval(
    env: WorkflowEnvironment,
) -> None:
    outcome, wf_id = await run_scenario(env, "backoff")
    assert outcome.result == "done on attempt 7"
    # 1 * 2^n, capped at 5 s.
    assert gaps(wf_id) == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert outcome.elapsed == pytest.approx(22.0, abs=0.5)


async def test_no_retry_is_scheduled_past_schedule_to_close(env: WorkflowEnvironment) -> None:
    outcome, wf_id = await run_scenario(env, "schedule-to-close")
    # Attempts start at 0, 1, 3 and 7 s; the next would start at 15 s, past the 10 s limit,
    # so the activity gives up after the fourth (Temporal: retry state TIMEOUT, and the
    # cause is the last attempt's failure).
    assert attempts(wf_id) == [1, 2, 3, 4]
    assert outcome.retry_state == RetryState.TIMEOUT
    assert outcome.cause == "ApplicationError"
    assert outcome.cause_message == "attempt 4 failed"
    assert outcome.elapsed < 10.0


async def test_retried_activity_appears_once_in_history(env: WorkflowEnvironment) -> None:
    outcome, wf_id = await run_scenario(env, "history")
    assert outcome.result == "done on attempt 3"
    history = await env.client.get_workflow_handle(wf_id).fetch_history()
    activity_events = [e for e in history.events if e.event_type.value.startswith("ActivityTask")]
    assert [e.event_type.value for e in activity_events] == [
        "ActivityTaskScheduled",
        "ActivityTaskStarted",
        "ActivityTaskCompleted",
    ]
    assert activity_events[1].attributes["attempt"] == 3


@activity.defn
async def hangs_after_first_failure() -> str:
    attempt = record_attempt()
    if attempt == 1:
        raise ApplicationError("first attempt fails fast", type="Flaky")
    # Heartbeat so this attempt learns it has been given up on, and stops.
    for _ in range(100):
        activity.heartbeat(attempt)
        await asyncio.sleep(0.05)
    return "should have timed out"


@workflow.defn
class ScheduleToCloseWhileRunning:
    @workflow.run
    async def run(self) -> Outcome:
        outcome = Outcome()
        try:
            outcome.result = await workflow.execute_activity(
                hangs_after_first_failure,
                schedule_to_close_timeout=timedelta(seconds=1),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            )
        except ActivityError as err:
            outcome.retry_state = err.retry_state
            outcome.cause = type(err.cause).__name__
            if isinstance(err.cause, TimeoutError):
                outcome.timeout_type = err.cause.type
        return outcome


@pytest.mark.realtime
async def test_schedule_to_close_timeout_stops_a_running_retry(
    real_env: WorkflowEnvironment,
) -> None:
    workflow_id = f"s2c-{uuid.uuid4()}"
    async with Worker(
        real_env.client,
        task_queue=QUEUE,
        workflows=[ScheduleToCloseWhileRunning],
        activities=[hangs_after_first_failure],
    ):
        outcome = await real_env.client.execute_workflow(
            ScheduleToCloseWhileRunning.run, id=workflow_id, task_queue=QUEUE
        )
    assert attempts(workflow_id) == [1, 2]
    assert outcome.result is None
    assert outcome.cause == "TimeoutError"
    assert outcome.timeout_type == TimeoutType.SCHEDULE_TO_CLOSE
