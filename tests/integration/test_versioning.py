"""Changing workflow code safely: ``workflow.patched`` / ``deprecate_patch`` and the Replayer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from perdure import Worker, activity, workflow
from perdure.client import WorkflowHistory
from perdure.testing import WorkflowEnvironment
from perdure.worker import Replayer
from perdure.workflow import NondeterminismError

OPTS = {"start_to_close_timeout": timedelta(seconds=10)}


@activity.defn
async def step(name: str) -> str:
    return name


@workflow.defn(name="Pipeline")
class V1:
    @workflow.run
    async def run(self) -> list[str]:
        done = [await workflow.execute_activity(step, "a", **OPTS)]
        await workflow.sleep(60)
        done.append(await workflow.execute_activity(step, "b", **OPTS))
        return done


@workflow.defn(name="Pipeline")
class V2:
    @workflow.run
    async def run(self) -> list[str]:
        done = [await workflow.execute_activity(step, "a", **OPTS)]
        if workflow.patched("add-c"):
            done.append(await workflow.execute_activity(step, "c", **OPTS))
        await workflow.sleep(60)
        done.append(await workflow.execute_activity(step, "b", **OPTS))
        return done


@workflow.defn(name="Pipeline")
class V3:
    @workflow.run
    async def run(self) -> list[str]:
        done = [await workflow.execute_activity(step, "a", **OPTS)]
        workflow.deprecate_patch("add-c")
        done.append(await workflow.execute_activity(step, "c", **OPTS))
        await workflow.sleep(60)
        done.append(await workflow.execute_activity(step, "b", **OPTS))
        return done


async def history_of(env: WorkflowEnvironment, cls: type, workflow_id: str) -> WorkflowHistory:
    async with Worker(env.client, task_queue="q", workflows=[cls], activities=[step]):
        handle = await env.client.start_workflow("Pipeline", id=workflow_id, task_queue="q")
        await handle.result()
        history: WorkflowHistory = await handle.fetch_history()
        return history


async def test_patched_code_replays_old_and_new_histories(env: WorkflowEnvironment) -> None:
    old = await history_of(env, V1, "old")
    new = await history_of(env, V2, "new")
    await Replayer(workflows=[V2]).replay_workflow(old)  # takes the old path
    await Replayer(workflows=[V2]).replay_workflow(new)
    with pytest.raises(NondeterminismError, match=r"ActivityTaskScheduled.*StartTimer"):
        await Replayer(workflows=[V1]).replay_workflow(new)


@pytest.mark.perdure_no_replay  # "old" ran on V1, which V3 no longer replays, by design
async def test_deprecated_patch_replays_histories_with_and_without_its_marker(
    env: WorkflowEnvironment,
) -> None:
    new = await history_of(env, V2, "new")
    latest = await history_of(env, V3, "latest")
    await Replayer(workflows=[V3]).replay_workflow(new)
    await Replayer(workflows=[V3]).replay_workflow(latest)
    old = await history_of(env, V1, "old")
    with pytest.raises(NondeterminismError):  # runs from before the patch must be gone
        await Replayer(workflows=[V3]).replay_workflow(old)


async def test_a_running_workflow_keeps_its_path_when_the_code_changes(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[V1], activities=[step]):
        running = await env.client.start_workflow("Pipeline", id="running", task_queue="q")
        await env.sleep(10)  # past step a and the patch point, inside the 60 s sleep
    async with Worker(env.client, task_queue="q", workflows=[V2], activities=[step]):
        # Replayed past the patch point without its marker: the old path, no step c.
        assert await running.result() == ["a", "b"]
        fresh = await env.client.execute_workflow("Pipeline", id="fresh", task_queue="q")
        assert fresh == ["a", "c", "b"]
