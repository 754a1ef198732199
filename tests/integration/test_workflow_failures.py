"""What fails a workflow, what only fails its task, and what replay catches."""

from __future__ import annotations

import datetime
import os
import random
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from perdure import (
    ApplicationError,
    Replayer,
    Worker,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    activity,
    workflow,
)
from perdure.client import WorkflowHandle
from perdure.testing import WorkflowEnvironment
from perdure.workflow import NondeterminismError


async def drain(env: WorkflowEnvironment) -> None:
    """Let the engine do everything that is due now, without moving the virtual clock."""
    await env.sleep(0)


async def event_types(handle: WorkflowHandle) -> list[str]:
    return [str(e.event_type) for e in (await handle.fetch_history()).events]


@workflow.defn
class Declines:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError(
            "card declined", {"amount": 42}, "retry tomorrow", type="CardDeclined"
        )


async def test_application_error_fails_the_workflow(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Declines]):
        handle = await env.client.start_workflow(Declines.run, id="d", task_queue="q")
        with pytest.raises(WorkflowFailureError) as exc_info:
            await handle.result()

    cause = exc_info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "CardDeclined"
    assert cause.message == "card declined"
    assert list(cause.details) == [{"amount": 42}, "retry tomorrow"]
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    types = await event_types(handle)
    assert types[-1] == "WorkflowExecutionFailed"
    assert "WorkflowTaskFailed" not in types


@workflow.defn
class Picky:
    """Raises a plain ValueError until a signal allows it to go on."""

    def __init__(self) -> None:
        self.allowed = False

    @workflow.run
    async def run(self) -> str:
        if not self.allowed:
            raise ValueError("not allowed yet")
        return "done"

    @workflow.signal
    def allow(self) -> None:
        self.allowed = True


async def test_plain_exception_fails_the_task_only_and_the_retry_succeeds(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Picky]):
        handle = await env.client.start_workflow(Picky.run, id="p", task_queue="q")
        await drain(env)
        stuck = await handle.describe()
        assert stuck.status == WorkflowExecutionStatus.RUNNING
        assert stuck.last_workflow_task_failure is not None
        assert "not allowed yet" in stuck.last_workflow_task_failure.message
        assert "WorkflowTaskFailed" in await event_types(handle)

        await handle.signal(Picky.allow)
        assert await handle.result() == "done"

    done = await handle.describe()
    assert done.status == WorkflowExecutionStatus.COMPLETED
    assert done.last_workflow_task_failure is None


async def test_workflow_failure_exception_types_make_value_error_fail_the_workflow(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(
        env.client, task_queue="q", workflows=[Picky], workflow_failure_exception_types=[ValueError]
    ):
        handle = await env.client.start_workflow(Picky.run, id="p", task_queue="q")
        with pytest.raises(WorkflowFailureError) as exc_info:
            await handle.result()

    cause = exc_info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "ValueError"
    assert "not allowed yet" in cause.message
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    assert "WorkflowTaskFailed" not in await event_types(handle)


def _open_devnull() -> None:
    with open(os.devnull):
        pass


FORBIDDEN: dict[str, Callable[[], Any]] = {
    "datetime.now": datetime.datetime.now,
    "random.random": random.random,
    "time.time": time.time,
    "uuid.uuid4": uuid.uuid4,
    "open": _open_devnull,
}


@workflow.defn
class CallsForbidden:
    @workflow.run
    async def run(self, call: str) -> str:
        FORBIDDEN[call]()
        return "ran"


@pytest.mark.parametrize(
    ("call", "alternative"),
    [
        ("datetime.now", "workflow.now()"),
        ("random.random", "workflow.random()"),
        ("time.time", "workflow.time()"),
        ("uuid.uuid4", "workflow.uuid4()"),
        ("open", "activity"),
    ],
)
async def test_non_deterministic_call_fails_the_task_naming_the_alternative(
    env: WorkflowEnvironment, call: str, alternative: str
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[CallsForbidden]):
        handle = await env.client.start_workflow(CallsForbidden.run, call, id="f", task_queue="q")
        await drain(env)
        description = await handle.describe()

    assert description.status == WorkflowExecutionStatus.RUNNING
    failure = description.last_workflow_task_failure
    assert failure is not None
    assert failure.type == "RestrictedWorkflowAccessError"
    assert alternative in failure.message
    types = await event_types(handle)
    assert "WorkflowTaskFailed" in types
    assert "WorkflowExecutionCompleted" not in types


@workflow.defn
class ReplaySafeValues:
    def __init__(self) -> None:
        self.first: dict[str, Any] = {}

    @workflow.run
    async def run(self) -> dict[str, Any]:
        self.first = self._sample()
        await workflow.sleep(timedelta(minutes=10))
        return {"first": self.first, "second": self._sample()}

    @workflow.query
    def first_values(self) -> dict[str, Any]:
        return self.first

    @staticmethod
    def _sample() -> dict[str, Any]:
        return {
            "now": workflow.now().timestamp(),
            "random": workflow.random().random(),
            "uuid": str(workflow.uuid4()),
        }


async def test_replay_safe_values_are_stable_on_replay(env: WorkflowEnvironment) -> None:
    # With no cache, every task and query rebuilds the workflow by replay.
    async with Worker(
        env.client, task_queue="q", workflows=[ReplaySafeValues], max_cached_workflows=0
    ):
        handle = await env.client.start_workflow(ReplaySafeValues.run, id="r", task_queue="q")
        await drain(env)
        seen_first = await handle.query(ReplaySafeValues.first_values)
        result = await handle.result()

    assert result["first"] == seen_first
    first, second = result["first"], result["second"]
    assert second["now"] - first["now"] == pytest.approx(600, abs=1)
    assert second["random"] != first["random"]
    assert second["uuid"] != first["uuid"]
    assert uuid.UUID(first["uuid"]).version == 4

    history = await handle.fetch_history()
    replayed = await Replayer(workflows=[ReplaySafeValues]).replay_workflow(history)
    assert replayed.replay_failure is None


@workflow.defn
class Echo:
    @workflow.run
    async def run(self, text: str) -> str:
        return text


async def test_unregistered_workflow_type_fails_the_task_and_the_worker_goes_on(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Echo]) as worker:
        handle = await env.client.start_workflow("NoSuchWorkflow", id="n", task_queue="q")
        await drain(env)
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        failure = description.last_workflow_task_failure
        assert failure is not None
        assert "NoSuchWorkflow" in failure.message
        assert "not registered" in failure.message

        assert worker.is_running
        assert await env.client.execute_workflow(
            Echo.run, "still here", id="e", task_queue="q"
        ) == ("still here")


@activity.defn
async def step(name: str) -> str:
    return name.upper()


@workflow.defn(name="Versioned")
class VersionedV1:
    @workflow.run
    async def run(self) -> str:
        result = await workflow.execute_activity(
            step, "one", start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.sleep(60)
        return result


@workflow.defn(name="Versioned")
class VersionedV2:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(60)  # moved before the activity: not compatible with v1 histories
        return await workflow.execute_activity(
            step, "one", start_to_close_timeout=timedelta(seconds=10)
        )


async def test_replayer_catches_a_changed_workflow(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[VersionedV1], activities=[step]):
        handle = await env.client.start_workflow(VersionedV1.run, id="v", task_queue="q")
        assert await handle.result() == "ONE"
    history = await handle.fetch_history()

    await Replayer(workflows=[VersionedV1]).replay_workflow(history)
    with pytest.raises(NondeterminismError) as exc_info:
        await Replayer(workflows=[VersionedV2]).replay_workflow(history)

    message = str(exc_info.value)
    assert "ActivityTaskScheduled" in message
    assert "StartTimer" in message


@activity.defn
async def double(value: int) -> int:
    return value * 2


@workflow.defn
class Accumulator:
    def __init__(self) -> None:
        self.inbox: list[int] = []

    @workflow.run
    async def run(self, rounds: int) -> list[int]:
        results = []
        for _ in range(rounds):
            await workflow.wait_condition(lambda: bool(self.inbox))
            value = self.inbox.pop(0)
            doubled = await workflow.execute_activity(
                double, value, start_to_close_timeout=timedelta(seconds=10)
            )
            await workflow.sleep(30)
            results.append(doubled)
        return results

    @workflow.signal
    def push(self, value: int) -> None:
        self.inbox.append(value)


async def test_sticky_cache_of_one_with_interleaved_workflows(env: WorkflowEnvironment) -> None:
    ids = [f"acc-{i}" for i in range(4)]
    async with Worker(
        env.client,
        task_queue="q",
        workflows=[Accumulator],
        activities=[double],
        max_cached_workflows=1,
    ):
        handles = [
            await env.client.start_workflow(Accumulator.run, 3, id=wid, task_queue="q")
            for wid in ids
        ]
        for round_ in range(3):
            for i, handle in enumerate(handles):
                await handle.signal(Accumulator.push, 100 * i + round_)
            await drain(env)
            await env.sleep(30)
        results = [await h.result() for h in handles]

    assert results == [[2 * (100 * i + r) for r in range(3)] for i in range(4)]
    for handle in handles:
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.COMPLETED
        assert "WorkflowTaskFailed" not in await event_types(handle)
