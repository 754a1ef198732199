"""A run evicted from a worker's cache has its code ended at once, on its own loop, as
Temporal ends an evicted workflow: its ``finally`` blocks run then, replaying, and new work they
start is refused (nothing is recorded). The run goes on: rebuilt by replay when its timer
fires, its code runs the same ``finally`` for real. Left to the garbage collector, the evicted
code would end whenever a collection found it, inside another workflow's task, adding that
task's commands (``tests/runtime/test_dispose.py`` shows it)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from perdure import Worker, activity, workflow
from perdure.client import WorkflowHandle
from perdure.testing import WorkflowEnvironment

# (workflow id, replaying, how its cleanup went), each time a Sleeper's finally block ends.
ENDED: list[tuple[str, bool, str]] = []
CLEANED: list[str] = []


@activity.defn
async def cleanup(workflow_id: str) -> None:
    CLEANED.append(workflow_id)


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.sleep(timedelta(hours=1))
        finally:
            me = workflow.info().workflow_id
            outcome = "cleaned"
            try:
                await workflow.execute_activity(
                    cleanup, me, start_to_close_timeout=timedelta(seconds=10)
                )
            except BaseException as exc:
                outcome = type(exc).__name__
                raise
            finally:
                ENDED.append((me, workflow.unsafe.is_replaying(), outcome))
        return "woke"


@contextmanager
def collector_off() -> Iterator[None]:
    """No collection may end the evicted code behind the test's back."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def timer_started(handle: WorkflowHandle) -> None:
    for _ in range(500):
        history = await handle.fetch_history()
        if any(e.event_type.value == "TimerStarted" for e in history.events):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{handle.id} never started its timer")


async def activities_scheduled(handle: WorkflowHandle) -> int:
    history = await handle.fetch_history()
    return sum(e.event_type.value == "ActivityTaskScheduled" for e in history.events)


async def test_an_evicted_runs_code_ends_at_once_and_the_run_goes_on(
    env: WorkflowEnvironment,
) -> None:
    ENDED.clear()
    CLEANED.clear()
    client = env.client
    worker = Worker(
        client,
        task_queue="q",
        workflows=[Sleeper],
        activities=[cleanup],
        max_cached_workflows=1,
    )
    with collector_off():
        async with worker:
            first = await client.start_workflow(Sleeper.run, id="first", task_queue="q")
            await timer_started(first)
            assert ENDED == []  # cached, waiting on its timer
            second = await client.start_workflow(Sleeper.run, id="second", task_queue="q")
            await timer_started(second)
            # The second run took the cache's only place: the first was evicted, its code
            # ended in its own context, replaying, its cleanup refused.
            assert ENDED == [("first", True, "WorkflowEvicted")]
            assert await activities_scheduled(first) == 0
            assert await activities_scheduled(second) == 0
            assert CLEANED == []
            # The hour passes: each run's code cleans up for real, once.
            assert await first.result() == "woke"
            assert await second.result() == "woke"
            assert sorted(CLEANED) == ["first", "second"]
            assert await activities_scheduled(first) == 1
            assert await activities_scheduled(second) == 1
        # The worker stopped: the run it still cached (the second, closed) left nothing.
    assert sorted(e for e in ENDED if not e[1]) == [
        ("first", False, "cleaned"),
        ("second", False, "cleaned"),
    ]


async def test_a_stopping_worker_ends_the_code_of_the_runs_it_caches(
    env: WorkflowEnvironment,
) -> None:
    ENDED.clear()
    client = env.client
    with collector_off():
        async with Worker(client, task_queue="q", workflows=[Sleeper], activities=[cleanup]):
            handle = await client.start_workflow(Sleeper.run, id="cached", task_queue="q")
            await timer_started(handle)
            assert ENDED == []
        assert ENDED == [("cached", True, "WorkflowEvicted")]
        assert await activities_scheduled(handle) == 0
        # Another worker takes the run up where it was, by replay.
        async with Worker(client, task_queue="q", workflows=[Sleeper], activities=[cleanup]):
            assert await handle.result() == "woke"
    assert ENDED[1:] == [("cached", False, "cleaned")]
