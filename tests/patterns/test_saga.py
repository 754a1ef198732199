"""perdure.patterns.Saga: compensations registered before their steps run in reverse (or in
parallel) when a step fails or the workflow is cancelled, shielded from that cancellation;
failing compensations stop the chain or are all reported; every history replays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from perdure import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryPolicy,
    Worker,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    activity,
    workflow,
)
from perdure.client import WorkflowHandle, WorkflowHistory
from perdure.patterns import CompensationError, Saga
from perdure.testing import WorkflowEnvironment
from perdure.worker import Replayer

QUEUE = "saga"
WAIT = 10.0  # real seconds: a bound on waiting for something to happen, never a delay
HEARTBEAT = timedelta(seconds=30)  # long: see test_activity_cancellation.py


@dataclass
class Plan:
    """How one run of the test workflow goes."""

    fail_at: str | None = None  # the step that fails for good
    block_at: str | None = None  # the step that runs until it is cancelled
    broken: list[str] = field(default_factory=list)  # compensations that fail for good
    flaky: list[str] = field(default_factory=list)  # compensations whose 1st attempt fails
    held: str | None = None  # the compensation that waits for the test to release it
    bug_after: str | None = None  # workflow code raises ValueError after this step
    sleep_after: str | None = None  # workflow code sleeps for a day after this step
    parallel: bool = False
    continue_with_error: bool = False
    explicit: bool = False  # try/except with saga.compensate() instead of async with


class Probe:
    """What the activities did, shared with the test (same process, same event loop)."""

    def __init__(self) -> None:
        self.calls: list[str] = []  # "<activity type>#<attempt>", in the order they ran
        self.blocked = asyncio.Event()  # the blocking step or the held compensation runs
        self.release = asyncio.Event()  # the held compensation may finish
        self.step_cancelled = asyncio.Event()


PROBE = Probe()


async def perform(plan: Plan) -> str:
    info = activity.info()
    name = info.activity_type
    PROBE.calls.append(f"{name}#{info.attempt}")
    if name == plan.fail_at or name in plan.broken:
        raise ApplicationError(f"{name} failed", type=f"{name.title()}Failed", non_retryable=True)
    if name in plan.flaky and info.attempt == 1:
        raise ConnectionError(f"{name}: connection reset")
    if name == plan.block_at:
        PROBE.blocked.set()
        try:
            for _ in range(int(WAIT / 0.01)):
                activity.heartbeat()  # how a running activity learns it is cancelled
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            PROBE.step_cancelled.set()
            raise
    if name == plan.held:
        PROBE.blocked.set()
        await asyncio.wait_for(PROBE.release.wait(), WAIT)
    return f"{name} done"


@activity.defn
async def reserve(plan: Plan) -> str:
    return await perform(plan)


@activity.defn
async def charge(plan: Plan) -> str:
    return await perform(plan)


@activity.defn
async def ship(plan: Plan) -> str:
    return await perform(plan)


@activity.defn
async def release(plan: Plan) -> str:
    return await perform(plan)


@activity.defn
async def refund(plan: Plan) -> str:
    return await perform(plan)


@activity.defn
async def unship(plan: Plan) -> str:
    return await perform(plan)


ACTIVITIES = [reserve, charge, ship, release, refund, unship]
STEPS: list[tuple[Callable[[Plan], Awaitable[str]], Callable[[Plan], Awaitable[str]]]] = [
    (reserve, release),
    (charge, refund),
    (ship, unship),
]


@workflow.defn
class OrderSaga:
    @workflow.run
    async def run(self, plan: Plan) -> list[str]:
        saga = Saga(
            parallel_compensation=plan.parallel,
            continue_with_error=plan.continue_with_error,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )
        if not plan.explicit:
            async with saga:
                return await self.steps(saga, plan)
        try:
            return await self.steps(saga, plan)
        except ActivityError:
            await saga.compensate()
            raise

    async def steps(self, saga: Saga, plan: Plan) -> list[str]:
        results = []
        for step, undo in STEPS:
            saga.add_compensation(undo, plan)  # registered before its step runs
            results.append(
                await workflow.execute_activity(
                    step,
                    plan,
                    start_to_close_timeout=timedelta(seconds=30),
                    heartbeat_timeout=HEARTBEAT,
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
            )
            if step.__name__ == plan.bug_after:
                raise ValueError(f"a bug after {step.__name__}")
            if step.__name__ == plan.sleep_after:
                await workflow.sleep(timedelta(days=1))
        return results


@dataclass
class Report:
    """What workflow code sees of a CompensationError and of its saga."""

    failed: list[str]
    compensated: list[str]
    not_run: list[str]
    cause: str
    saga_compensated: list[str]


@workflow.defn
class ReportsCompensation:
    @workflow.run
    async def run(self, plan: Plan) -> Report:
        saga = Saga(continue_with_error=plan.continue_with_error)
        try:
            async with saga:
                await OrderSaga().steps(saga, plan)
        except CompensationError as err:
            return Report(
                [f.activity_type for f in err.failures],
                list(err.compensated),
                list(err.not_run),
                f"{type(err.cause).__name__}: {err.cause}",
                list(saga.compensated),
            )
        raise ApplicationError("expected a CompensationError")


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    global PROBE
    PROBE = Probe()
    async with await WorkflowEnvironment.start_time_skipping() as env:
        yield env


def run_worker(
    env: WorkflowEnvironment, failure_types: Sequence[type[BaseException]] = ()
) -> Worker:
    return Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[OrderSaga, ReportsCompensation],
        activities=ACTIVITIES,
        workflow_failure_exception_types=failure_types,
    )


async def run(
    env: WorkflowEnvironment, plan: Plan, failure_types: Sequence[type[BaseException]] = ()
) -> tuple[WorkflowHandle[Any], BaseException | list[str]]:
    """Run the workflow to its end: its handle, and its result or the cause of its failure."""
    async with run_worker(env, failure_types):
        handle = await env.client.start_workflow(OrderSaga.run, plan, id="order", task_queue=QUEUE)
        try:
            outcome: BaseException | list[str] = await handle.result()
        except WorkflowFailureError as err:
            outcome = err.cause  # type: ignore[assignment]
    await assert_replays(handle, failure_types)
    return handle, outcome


async def assert_replays(
    handle: WorkflowHandle[Any], failure_types: Sequence[type[BaseException]] = ()
) -> None:
    """The recorded history, through its JSON form, replays against the workflow code."""
    history = await handle.fetch_history()
    stored = WorkflowHistory.from_json(handle.id, history.to_json())
    replayer = Replayer(
        workflows=[OrderSaga, ReportsCompensation], workflow_failure_exception_types=failure_types
    )
    await replayer.replay_workflow(stored)


async def scheduled(handle: WorkflowHandle[Any]) -> list[str]:
    """The activity types the workflow scheduled, in history order."""
    history = await handle.fetch_history()
    return [
        e.attributes["activity_type"]
        for e in history.events
        if e.event_type.value == "ActivityTaskScheduled"
    ]


async def event_types(handle: WorkflowHandle[Any]) -> list[str]:
    return [e.event_type.value for e in (await handle.fetch_history()).events]


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait (in real time, bounded) until the engine has reached a state the test needs."""
    async with asyncio.timeout(WAIT):
        # The history has no change event to wait on from a test: poll it.
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_success_runs_no_compensation(env: WorkflowEnvironment) -> None:
    handle, result = await run(env, Plan())
    assert result == ["reserve done", "charge done", "ship done"]
    assert await scheduled(handle) == ["reserve", "charge", "ship"]


@pytest.mark.parametrize(
    ("fail_at", "expected"),
    [
        ("reserve", ["reserve", "release"]),
        ("charge", ["reserve", "charge", "refund", "release"]),
        ("ship", ["reserve", "charge", "ship", "unship", "refund", "release"]),
    ],
)
@pytest.mark.parametrize("explicit", [False, True], ids=["async-with", "compensate"])
async def test_failure_at_a_step_compensates_it_and_the_earlier_ones_in_reverse(
    env: WorkflowEnvironment, fail_at: str, expected: list[str], explicit: bool
) -> None:
    handle, cause = await run(env, Plan(fail_at=fail_at, explicit=explicit))
    # The step's own error fails the workflow, as it would have without the saga.
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == f"{fail_at.title()}Failed"
    assert await scheduled(handle) == expected
    assert PROBE.calls == [f"{name}#1" for name in expected]
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED


async def test_parallel_compensation_starts_all_at_once(env: WorkflowEnvironment) -> None:
    handle, cause = await run(env, Plan(fail_at="ship", parallel=True))
    assert isinstance(cause, ActivityError)
    assert await scheduled(handle) == ["reserve", "charge", "ship", "unship", "refund", "release"]
    # All three were scheduled by one workflow task, before any of them completed.
    events = await event_types(handle)
    first = events.index("ActivityTaskFailed") + 1  # ship's failure
    tail = events[first:]
    assert tail[:4] == ["WorkflowTaskCompleted"] + ["ActivityTaskScheduled"] * 3


async def test_a_failing_compensation_stops_the_chain(env: WorkflowEnvironment) -> None:
    handle, cause = await run(env, Plan(fail_at="ship", broken=["refund"]))
    assert await scheduled(handle) == ["reserve", "charge", "ship", "unship", "refund"]
    assert isinstance(cause, ApplicationError)
    assert cause.type == "CompensationError"
    assert cause.message == "Compensation failed: refund: refund failed; not run: release"
    assert cause.details[0] == {
        "failed": [
            {
                "activity_type": "refund",
                "activity_id": "5",
                "error_type": "RefundFailed",
                "message": "refund failed",
            }
        ],
        "compensated": ["unship"],
        "not_run": ["release"],
    }
    # .cause is the error that made the saga compensate.
    assert isinstance(cause.cause, ActivityError)
    assert isinstance(cause.cause.cause, ApplicationError)
    assert cause.cause.cause.type == "ShipFailed"


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
async def test_continue_with_error_runs_the_rest_and_reports_every_failure(
    env: WorkflowEnvironment, parallel: bool
) -> None:
    plan = Plan(fail_at="ship", broken=["unship", "refund"], continue_with_error=True)
    plan.parallel = parallel
    handle, cause = await run(env, plan)
    assert await scheduled(handle) == ["reserve", "charge", "ship", "unship", "refund", "release"]
    assert isinstance(cause, ApplicationError)
    assert cause.type == "CompensationError"
    report = cause.details[0]
    assert [f["activity_type"] for f in report["failed"]] == ["unship", "refund"]
    assert [f["error_type"] for f in report["failed"]] == ["UnshipFailed", "RefundFailed"]
    assert (report["compensated"], report["not_run"]) == (["release"], [])
    assert cause.message == ("Compensation failed: unship: unship failed; refund: refund failed")


async def test_compensations_retry_until_they_succeed(env: WorkflowEnvironment) -> None:
    handle, cause = await run(env, Plan(fail_at="ship", flaky=["refund", "release"]))
    # Each compensation was scheduled once and retried inside its activity.
    assert await scheduled(handle) == ["reserve", "charge", "ship", "unship", "refund", "release"]
    assert PROBE.calls[3:] == ["unship#1", "refund#1", "refund#2", "release#1", "release#2"]
    # All compensated: the step's failure is what the workflow fails with.
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "ShipFailed"


async def test_cancelling_the_workflow_during_a_step_compensates_then_ends_cancelled(
    env: WorkflowEnvironment,
) -> None:
    async with run_worker(env):
        handle = await env.client.start_workflow(
            OrderSaga.run, Plan(block_at="ship"), id="cancel-in-step", task_queue=QUEUE
        )
        await asyncio.wait_for(PROBE.blocked.wait(), WAIT)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as exc_info:
            await handle.result()
        await asyncio.wait_for(PROBE.step_cancelled.wait(), WAIT)
    assert isinstance(exc_info.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    events = await event_types(handle)
    cancel_requested = events.index("WorkflowExecutionCancelRequested")
    # The step was cancelled; its compensation and the earlier ones were scheduled after the
    # cancellation request and each completed.
    assert "ActivityTaskCancelRequested" in events[cancel_requested:]
    assert events[cancel_requested:].count("ActivityTaskScheduled") == 3
    assert events.count("ActivityTaskCompleted") == 2 + 3
    assert await scheduled(handle) == ["reserve", "charge", "ship", "unship", "refund", "release"]
    assert PROBE.calls[3:] == ["unship#1", "refund#1", "release#1"]
    await assert_replays(handle)


async def test_cancelling_the_workflow_at_a_timer_compensates_then_ends_cancelled(
    env: WorkflowEnvironment,
) -> None:
    async with run_worker(env):
        handle = await env.client.start_workflow(
            OrderSaga.run, Plan(sleep_after="charge"), id="cancel-at-timer", task_queue=QUEUE
        )
        await env.sleep(timedelta(hours=1))  # it sleeps after charging
        await handle.cancel()  # asyncio.CancelledError, raised out of workflow.sleep
        with pytest.raises(WorkflowFailureError) as exc_info:
            await handle.result()
    assert isinstance(exc_info.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    # ship was never reached, so unship was never registered.
    assert await scheduled(handle) == ["reserve", "charge", "refund", "release"]
    assert PROBE.calls[2:] == ["refund#1", "release#1"]
    await assert_replays(handle)


async def test_a_cancellation_during_compensation_waits_for_the_compensations(
    env: WorkflowEnvironment,
) -> None:
    async with run_worker(env):
        handle = await env.client.start_workflow(
            OrderSaga.run,
            Plan(fail_at="ship", held="refund"),
            id="cancel-in-undo",
            task_queue=QUEUE,
        )
        await asyncio.wait_for(PROBE.blocked.wait(), WAIT)  # refund is running
        await handle.cancel()

        async def cancellation_seen() -> bool:
            events = await event_types(handle)
            return (
                "WorkflowTaskCompleted"
                in events[events.index("WorkflowExecutionCancelRequested") :]
            )

        await until(cancellation_seen)  # the workflow task that delivered it has completed
        PROBE.release.set()
        with pytest.raises(WorkflowFailureError) as exc_info:
            await handle.result()
    # The compensation in flight was not cancelled, the next one still ran, and then the
    # deferred cancellation ended the workflow.
    events = await event_types(handle)
    assert "ActivityTaskCancelRequested" not in events
    assert await scheduled(handle) == ["reserve", "charge", "ship", "unship", "refund", "release"]
    assert events.index("WorkflowExecutionCancelRequested") < len(events) - events[::-1].index(
        "ActivityTaskScheduled"
    )
    assert PROBE.calls[3:] == ["unship#1", "refund#1", "release#1"]
    assert isinstance(exc_info.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    await assert_replays(handle)


async def test_a_bug_fails_the_task_without_compensating(env: WorkflowEnvironment) -> None:
    async with run_worker(env):
        handle = await env.client.start_workflow(
            OrderSaga.run, Plan(bug_after="charge"), id="bug", task_queue=QUEUE
        )
        await env.sleep(timedelta(minutes=1))  # the failed task is retried meanwhile
        described = await handle.describe()
        await handle.terminate("test over")
    # The workflow goes on (waiting for a fix); undoing its steps would have been wrong.
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert described.last_workflow_task_failure is not None
    assert described.last_workflow_task_failure.type == "ValueError"
    assert await scheduled(handle) == ["reserve", "charge"]


async def test_a_listed_failure_type_compensates(env: WorkflowEnvironment) -> None:
    handle, cause = await run(env, Plan(bug_after="charge"), failure_types=[ValueError])
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.message) == ("ValueError", "a bug after charge")
    assert await scheduled(handle) == ["reserve", "charge", "refund", "release"]


@pytest.mark.parametrize("continue_with_error", [False, True], ids=["stop", "continue"])
async def test_workflow_code_sees_what_was_compensated(
    env: WorkflowEnvironment, continue_with_error: bool
) -> None:
    plan = Plan(fail_at="ship", broken=["refund"], continue_with_error=continue_with_error)
    async with run_worker(env):
        handle = await env.client.start_workflow(
            ReportsCompensation.run, plan, id="report", task_queue=QUEUE
        )
        report = await handle.result()
    compensated = ["unship", "release"] if continue_with_error else ["unship"]
    assert report == Report(
        failed=["refund"],
        compensated=compensated,
        not_run=[] if continue_with_error else ["release"],
        cause="ActivityError: Activity task failed",
        saga_compensated=compensated,
    )
    await assert_replays(handle)


def test_add_compensation_checks_its_arguments() -> None:
    saga = Saga()
    with pytest.raises(TypeError, match="is not an activity"):
        saga.add_compensation(print, "x")
    with pytest.raises(ValueError, match="either arg or args"):
        saga.add_compensation(refund, Plan(), args=[Plan()])
    with pytest.raises(ValueError, match="needs start_to_close_timeout"):
        Saga(start_to_close_timeout=None).add_compensation("refund", Plan())
    # By name, with its own options; no workflow is needed to register.
    Saga(start_to_close_timeout=None).add_compensation(
        "refund", args=[Plan()], schedule_to_close_timeout=timedelta(minutes=5)
    )
