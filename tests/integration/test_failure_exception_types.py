"""``@workflow.defn(failure_exception_types=...)``: the exception types that fail a workflow
(or an update) of that class instead of its workflow task, beside the worker's
``workflow_failure_exception_types``; non-determinism too when a listed type covers it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from perdure import (
    ApplicationError,
    Worker,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    activity,
    workflow,
)
from perdure.client import WorkflowHandle, WorkflowUpdateFailedError
from perdure.testing import WorkflowEnvironment
from perdure.workflow import NondeterminismError


class NotReady(Exception):
    pass


class Gate:
    def __init__(self) -> None:
        self.open = False

    async def wait_and_fail(self) -> None:
        await workflow.wait_condition(lambda: self.open)
        raise NotReady("the gate opened too early")

    @workflow.signal
    def open_gate(self) -> None:
        self.open = True

    @workflow.update
    def check(self, value: int) -> int:
        if value < 0:
            raise NotReady(f"{value} is not ready")
        return value


@workflow.defn(failure_exception_types=[NotReady])
class StrictGate(Gate):
    @workflow.run
    async def run(self) -> None:
        await self.wait_and_fail()


@workflow.defn
class LenientGate(Gate):
    @workflow.run
    async def run(self) -> None:
        await self.wait_and_fail()


async def test_a_class_s_failure_types_fail_its_workflows_and_updates_only(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[StrictGate, LenientGate]):
        strict = await env.client.start_workflow(StrictGate.run, id="s", task_queue="q")
        with pytest.raises(WorkflowUpdateFailedError) as update_failed:
            await strict.execute_update(StrictGate.check, -1)
        assert await strict.execute_update(StrictGate.check, 1) == 1  # still running
        await strict.signal(StrictGate.open_gate)
        with pytest.raises(WorkflowFailureError) as workflow_failed:
            await strict.result()

        lenient = await env.client.start_workflow(LenientGate.run, id="l", task_queue="q")
        await lenient.signal(LenientGate.open_gate)
        await env.sleep(0)
        stuck = await lenient.describe()
        await lenient.terminate()

    for failure in (update_failed.value.cause, workflow_failed.value.cause):
        assert isinstance(failure, ApplicationError) and failure.type == "NotReady"
    assert stuck.status == WorkflowExecutionStatus.RUNNING
    assert stuck.last_workflow_task_failure is not None
    assert stuck.last_workflow_task_failure.type == "NotReady"


@activity.defn
async def step(name: str) -> str:
    return name.upper()


@workflow.defn(name="Changed")
class Before:
    @workflow.run
    async def run(self) -> str:
        result = await workflow.execute_activity(
            step, "one", start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.sleep(60)
        return result


@workflow.defn(name="Changed", failure_exception_types=[NondeterminismError])
class After:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(60)  # moved before the activity: not compatible with Before's runs
        return await workflow.execute_activity(
            step, "one", start_to_close_timeout=timedelta(seconds=10)
        )


async def event_types(handle: WorkflowHandle) -> list[str]:
    return [str(e.event_type) for e in (await handle.fetch_history()).events]


@pytest.mark.perdure_no_replay  # the run ended because its history no longer replays
async def test_listed_non_determinism_fails_the_workflow(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Before], activities=[step]):
        handle = await env.client.start_workflow(Before.run, id="c", task_queue="q")
        await env.sleep(0)  # the activity ran; the timer is waiting
    async with Worker(env.client, task_queue="q", workflows=[After], activities=[step]):
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "NondeterminismError"
    assert "ActivityTaskScheduled" in cause.message and "StartTimer" in cause.message
    types = await event_types(handle)
    assert types[-2:] == ["WorkflowTaskCompleted", "WorkflowExecutionFailed"]
    assert "WorkflowTaskFailed" not in types


@workflow.defn
class ReadsTheClock:
    @workflow.run
    async def run(self) -> float:
        return time.time()  # perdure: allow-nondeterminism (what this test is about)


@pytest.mark.perdure_no_replay  # the run ended because its code is not replay-safe
async def test_a_worker_s_exception_type_fails_the_workflow_on_a_forbidden_call(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(
        env.client,
        task_queue="q",
        workflows=[ReadsTheClock],
        workflow_failure_exception_types=[Exception],
    ):
        with pytest.raises(WorkflowFailureError) as failed:
            await env.client.execute_workflow(ReadsTheClock.run, id="t", task_queue="q")

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "RestrictedWorkflowAccessError" and "time.time" in cause.message
