"""``activity.wait_for_cancelled()`` in a worker: it returns when the workflow cancels the
activity, and a call that is given up on (the activity finishes first) holds nothing back."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from perdure import activity, workflow
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker
from perdure.workflow import ActivityCancellationType

SEEN: list[str] = []
WATCHING: list[asyncio.Event] = []


@activity.defn
async def watch() -> str:
    activity.heartbeat()  # cancellation reaches an activity through its heartbeats
    WATCHING[0].set()
    try:
        await activity.wait_for_cancelled()
    except asyncio.CancelledError:  # as in Temporal: the activity's task is cancelled too
        SEEN.append("cancelled while waiting")
        raise
    SEEN.append("wait returned without the task being cancelled")
    return "not cancelled"


@activity.defn
async def race_its_cancel() -> str:
    waiting = asyncio.ensure_future(activity.wait_for_cancelled())
    await asyncio.sleep(0)
    waiting.cancel()
    return "finished first"


@workflow.defn
class Watcher:
    def __init__(self) -> None:
        self.stop = False

    @workflow.signal
    def halt(self) -> None:
        self.stop = True

    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(
            watch,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(minutes=1),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.wait_condition(lambda: self.stop)
        handle.cancel()
        try:
            await handle
        except Exception as exc:
            return type(exc.__cause__ or exc).__name__
        return "not cancelled"


@workflow.defn
class Racer:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            race_its_cancel, start_to_close_timeout=timedelta(minutes=1)
        )


async def test_wait_for_cancelled_returns_when_the_workflow_cancels(
    env: WorkflowEnvironment,
) -> None:
    SEEN.clear()
    WATCHING[:] = [asyncio.Event()]
    async with Worker(env.client, task_queue="q", workflows=[Watcher], activities=[watch]):
        handle = await env.client.start_workflow(Watcher.run, id="w", task_queue="q")
        await asyncio.wait_for(WATCHING[0].wait(), timeout=10)  # real time: a bound only
        await handle.signal(Watcher.halt)
        assert await handle.result() == "CancelledError"
    assert SEEN == ["cancelled while waiting"]


async def test_an_abandoned_wait_for_cancelled_holds_no_thread(
    env: WorkflowEnvironment,
) -> None:
    loop = asyncio.get_running_loop()
    async with Worker(env.client, task_queue="q", workflows=[Racer], activities=[race_its_cancel]):
        assert await env.client.execute_workflow(Racer.run, id="r", task_queue="q") == (
            "finished first"
        )
    # A waiter parked in the default executor would make this wait forever (bounded by the
    # test timeout): shutting the executor down waits for its threads.
    await asyncio.wait_for(loop.shutdown_default_executor(), timeout=10)
