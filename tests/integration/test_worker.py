"""Worker behaviour: concurrency limits, graceful shutdown, the sticky cache, asyncio
primitives in workflow code."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from perdure import Worker, activity, workflow
from perdure.testing import WorkflowEnvironment

TIMEOUT = timedelta(seconds=30)


class Gauge:
    """Counts activities running at once (activities run in the test's process)."""

    running = 0
    peak = 0
    release = asyncio.Event()
    three_running = asyncio.Event()


@activity.defn
async def gauged(i: int) -> int:
    Gauge.running += 1
    Gauge.peak = max(Gauge.peak, Gauge.running)
    if Gauge.running == 3:
        Gauge.three_running.set()
    try:
        await Gauge.release.wait()
        return i
    finally:
        Gauge.running -= 1


@workflow.defn
class FanOut:
    @workflow.run
    async def run(self, n: int) -> list[int]:
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_activity(gauged, i, start_to_close_timeout=TIMEOUT)
                    for i in range(n)
                )
            )
        )


async def test_max_concurrent_activities_bounds_parallel_attempts(
    env: WorkflowEnvironment,
) -> None:
    Gauge.running = Gauge.peak = 0
    Gauge.release = asyncio.Event()
    Gauge.three_running = asyncio.Event()
    async with Worker(
        env.client,
        task_queue="q",
        workflows=[FanOut],
        activities=[gauged],
        max_concurrent_activities=3,
    ):
        handle = await env.client.start_workflow(FanOut.run, 10, id="fan", task_queue="q")
        await Gauge.three_running.wait()
        for _ in range(20):  # give the poller every chance to over-claim
            await asyncio.sleep(0)
        assert Gauge.running == 3
        Gauge.release.set()
        assert await handle.result() == list(range(10))
    assert Gauge.peak == 3


@activity.defn
async def slow_step() -> str:
    await asyncio.sleep(0.2)
    return "finished"


@workflow.defn
class OneSlowStep:
    @workflow.run
    async def run(self) -> str:
        return str(await workflow.execute_activity(slow_step, start_to_close_timeout=TIMEOUT))


@pytest.mark.realtime
async def test_graceful_shutdown_lets_the_running_activity_finish(
    real_env: WorkflowEnvironment,
) -> None:
    client = real_env.client
    worker = Worker(
        client,
        task_queue="q",
        workflows=[OneSlowStep],
        activities=[slow_step],
        graceful_shutdown_timeout=timedelta(seconds=5),
    )
    run = asyncio.ensure_future(worker.run())
    handle = await client.start_workflow(OneSlowStep.run, id="slow", task_queue="q")
    history = await handle.fetch_history()
    while not any(e.event_type.value == "ActivityTaskScheduled" for e in history.events):
        await asyncio.sleep(0.01)
        history = await handle.fetch_history()
    await asyncio.sleep(0.05)  # the activity is running now
    await worker.shutdown()
    await run
    assert not worker.is_running
    events = [e.event_type.value for e in (await handle.fetch_history()).events]
    assert "ActivityTaskCompleted" in events  # finished, not abandoned
    async with Worker(client, task_queue="q", workflows=[OneSlowStep], activities=[slow_step]):
        assert await handle.result() == "finished"


@workflow.defn
class Primitives:
    def __init__(self) -> None:
        self.log: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        lock = asyncio.Lock()
        sem = asyncio.Semaphore(2)
        queue: asyncio.Queue[int] = asyncio.Queue()

        async def critical(name: str) -> None:
            async with lock:
                self.log.append(f"{name}:in")
                await workflow.sleep(1)
                self.log.append(f"{name}:out")

        async def limited(i: int) -> None:
            async with sem:
                await workflow.sleep(10 - i)
                self.log.append(f"sem{i}")

        async def producer() -> None:
            for i in range(3):
                await queue.put(i)
                await workflow.sleep(1)

        async def consumer() -> None:
            for _ in range(3):
                self.log.append(f"q{await queue.get()}")

        await asyncio.gather(critical("a"), critical("b"))
        await asyncio.gather(*(limited(i) for i in range(3)))
        await asyncio.gather(producer(), consumer())
        return self.log


async def test_asyncio_primitives_are_deterministic_and_durable(
    env: WorkflowEnvironment,
) -> None:
    expected = ["a:in", "a:out", "b:in", "b:out", "sem1", "sem0", "sem2", "q0", "q1", "q2"]
    # max_cached_workflows=0: every task replays the whole history, so each step is also
    # checked against its recorded commands.
    async with Worker(env.client, task_queue="q", workflows=[Primitives], max_cached_workflows=0):
        result = await env.client.execute_workflow(Primitives.run, id="prim", task_queue="q")
    assert result == expected
