"""Eager dispatch seen from the worker: what a worker schedules for itself it runs without
polling for it, and work for other workers still reaches them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from perdure import Worker, activity, workflow
from perdure.testing import WorkflowEnvironment

TIMEOUT = timedelta(seconds=30)


@activity.defn
async def add_one(n: int) -> int:
    return n + 1


@workflow.defn
class Count:
    @workflow.run
    async def run(self, steps: int) -> int:
        n = 0
        for _ in range(steps):
            n = await workflow.execute_activity(add_one, n, start_to_close_timeout=TIMEOUT)
        return n


def count_claims(monkeypatch: pytest.MonkeyPatch, env: WorkflowEnvironment) -> dict[str, int]:
    """How many tasks the pollers claimed, by kind (and how often history was read)."""
    store = env.client.store
    claimed = {"workflow": 0, "activity": 0}
    get_history = store.get_history

    async def read_history(*args: Any) -> Any:
        claimed["history reads"] = claimed.get("history reads", 0) + 1
        return await get_history(*args)

    monkeypatch.setattr(store, "get_history", read_history)
    complete = store.complete_workflow_task

    async def complete_task(*args: Any) -> Any:
        claimed["task commits"] = claimed.get("task commits", 0) + 1
        return await complete(*args)

    monkeypatch.setattr(store, "complete_workflow_task", complete_task)
    for kind, name in (("workflow", "claim_workflow_tasks"), ("activity", "claim_activity_tasks")):
        original = getattr(store, name)

        async def claim(*args: Any, _original: Any = original, _kind: str = kind) -> Sequence[Any]:
            tasks = await _original(*args)
            claimed[_kind] += len(tasks)
            return tasks  # type: ignore[no-any-return]

        monkeypatch.setattr(store, name, claim)
    return claimed


async def test_a_worker_runs_what_it_schedules_without_polling_for_it(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed = count_claims(monkeypatch, env)
    client = env.client
    async with Worker(
        client, task_queue="eager", workflows=[Count], activities=[add_one], identity="w-1"
    ):
        for i in range(3):
            assert await client.execute_workflow(Count.run, 4, id=f"c{i}", task_queue="eager") == 4
    # The start leased the first workflow task to the worker; each workflow task leased its
    # activity to it; each activity's outcome leased the next workflow task (the run was in
    # its cache): nothing was left for the pollers, and each task brought the events it was
    # for, so no history was read; and each task was run and recorded in the commit that
    # made it (the start's, the activity result's), so none had a commit of its own.
    assert claimed == {"workflow": 0, "activity": 0}
    history = await client.get_workflow_handle("c2").fetch_history()
    started = [e for e in history.events if e.event_type.value == "ActivityTaskStarted"]
    assert [e.attributes["attempt"] for e in started] == [1, 1, 1, 1]
    completed = [e for e in history.events if e.event_type.value == "WorkflowTaskCompleted"]
    assert [e.attributes["identity"] for e in completed] == ["w-1"] * 5


async def test_work_for_other_workers_still_reaches_them(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed = count_claims(monkeypatch, env)
    client = env.client
    async with (
        Worker(client, task_queue="split", workflows=[Count]),
        Worker(client, task_queue="split", activities=[add_one]),
    ):
        assert await client.execute_workflow(Count.run, 3, id="split", task_queue="split") == 3
    # The workflow worker runs no activities: each was claimed by the other worker's poller,
    # whose outcomes went back to the queue for the workflow worker to claim (and commit on
    # its own). The first task was still run in the start's commit.
    assert claimed == {"workflow": 3, "activity": 3, "history reads": 3, "task commits": 3}


class Flaky:
    failures_left = 0


@workflow.defn
class FailsAfterAnActivity:
    @workflow.run
    async def run(self) -> int:
        n: int = await workflow.execute_activity(add_one, 0, start_to_close_timeout=TIMEOUT)
        if Flaky.failures_left:
            Flaky.failures_left -= 1
            raise RuntimeError("a bug, fixed in time for the retry")
        return n


async def test_a_task_failing_in_an_activity_results_commit_fails_as_any_other(
    env: WorkflowEnvironment,
) -> None:
    # The first failure happens inside the activity result's commit, where the task is
    # dropped and left to run after the commit (by replay): there it fails, is recorded as
    # failed once, and its retry succeeds.
    Flaky.failures_left = 2
    client = env.client
    async with Worker(
        client, task_queue="flaky", workflows=[FailsAfterAnActivity], activities=[add_one]
    ):
        handle = await client.start_workflow(FailsAfterAnActivity.run, id="f", task_queue="flaky")
        assert await handle.result() == 1
    assert Flaky.failures_left == 0
    history = await handle.fetch_history()
    failed = [e for e in history.events if e.event_type.value == "WorkflowTaskFailed"]
    assert len(failed) == 1
    assert len([e for e in history.events if e.event_type.value == "ActivityTaskCompleted"]) == 1


async def test_a_stopped_worker_is_offered_no_more_starts(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A running worker registers its eager dispatch with the store; once it stops, a start
    # made in its process is left to the queue, where the next worker's poller claims it.
    claimed = count_claims(monkeypatch, env)
    client = env.client
    async with Worker(client, task_queue="again", workflows=[Count], activities=[add_one]):
        assert await client.execute_workflow(Count.run, 1, id="a1", task_queue="again") == 1
    assert claimed["workflow"] == 0
    handle = await client.start_workflow(Count.run, 1, id="a2", task_queue="again")
    async with Worker(client, task_queue="again", workflows=[Count], activities=[add_one]):
        assert await handle.result() == 1
    assert claimed["workflow"] == 1


async def test_a_burst_of_starts_is_served_in_commit_beyond_the_workers_slots(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Twelve starts queued at once, for one commit batch, on a worker with two workflow task
    # slots: each reserves a slot only when its transaction leases the task, and gives it
    # back once the task has run in that transaction, so every first task (and every task
    # an activity's result schedules) is run in the commit that made it; none is left for
    # the poller, none has a commit of its own.
    claimed = count_claims(monkeypatch, env)
    client = env.client
    async with Worker(
        client,
        task_queue="burst",
        workflows=[Count],
        activities=[add_one],
        max_concurrent_workflow_tasks=2,
        max_concurrent_activities=2,
    ):
        handles = await asyncio.gather(
            *(
                client.start_workflow(Count.run, 2, id=f"b{i}", task_queue="burst")
                for i in range(12)
            )
        )
        assert await asyncio.gather(*(h.result() for h in handles)) == [2] * 12
    assert claimed.get("task commits", 0) == 0
    assert claimed["workflow"] == 0
