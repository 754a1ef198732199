"""Workflow id reuse and conflict policies."""

from __future__ import annotations

import contextlib

import pytest

from perdure import Worker, workflow
from perdure.client import (
    WorkflowAlreadyStartedError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from perdure.exceptions import ApplicationError
from perdure.testing import WorkflowEnvironment


@workflow.defn
class Job:
    @workflow.run
    async def run(self, outcome: str) -> str:
        await workflow.sleep(10)
        if outcome == "fail":
            raise ApplicationError("failed on purpose")
        return outcome


async def finish(env: WorkflowEnvironment, workflow_id: str, outcome: str) -> None:
    handle = await env.client.start_workflow(Job.run, outcome, id=workflow_id, task_queue="q")
    with contextlib.suppress(WorkflowFailureError):  # a failed run is what "fail" wants
        await handle.result()


async def test_reuse_policies_for_closed_runs(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Job]):
        await finish(env, "ok", "done")
        await finish(env, "bad", "fail")
        with pytest.raises(WorkflowAlreadyStartedError):
            await env.client.start_workflow(
                Job.run,
                "x",
                id="ok",
                task_queue="q",
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        with pytest.raises(WorkflowAlreadyStartedError):
            await env.client.start_workflow(
                Job.run,
                "x",
                id="ok",
                task_queue="q",
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            )
        again = await env.client.start_workflow(
            Job.run,
            "second",
            id="bad",
            task_queue="q",
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
        assert await again.result() == "second"
        third = await env.client.start_workflow(Job.run, "third", id="ok", task_queue="q")
        assert await third.result() == "third"  # ALLOW_DUPLICATE, the default


async def test_conflict_policies_for_a_running_workflow(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Job]):
        first = await env.client.start_workflow(Job.run, "one", id="r", task_queue="q")
        with pytest.raises(WorkflowAlreadyStartedError) as info:
            await env.client.start_workflow(Job.run, "two", id="r", task_queue="q")
        assert info.value.run_id == first.result_run_id
        same = await env.client.start_workflow(
            Job.run,
            "two",
            id="r",
            task_queue="q",
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        assert same.result_run_id == first.result_run_id
        replacement = await env.client.start_workflow(
            Job.run,
            "three",
            id="r",
            task_queue="q",
            id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
        )
        assert replacement.result_run_id != first.result_run_id
        old = env.client.get_workflow_handle("r", run_id=first.result_run_id)
        assert (await old.describe()).status == WorkflowExecutionStatus.TERMINATED
        assert await replacement.result() == "three"
