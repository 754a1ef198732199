"""``workflow.wait`` and ``workflow.as_completed`` behave as ``asyncio.wait`` and
``asyncio.as_completed`` do, in an order that replays (every closed workflow here is
replayed by the fixture)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from perdure import ApplicationError, Worker, activity, workflow
from perdure.testing import WorkflowEnvironment


async def after(minutes: int) -> int:
    await workflow.sleep(timedelta(minutes=minutes))
    return minutes


@workflow.defn
class WaitAll:
    @workflow.run
    async def run(self, minutes: list[int]) -> list[int]:
        tasks = [asyncio.create_task(after(m)) for m in minutes]
        done, pending = await workflow.wait(tasks)
        assert done == tasks and pending == []  # lists, in the order given
        return [t.result() for t in done]


@workflow.defn
class WaitFirst:
    def __init__(self) -> None:
        self.is_complete = False
        self.rounds = 0

    @workflow.run
    async def run(self) -> int:
        # Temporal's sleep_for_days sample: a reminder every 30 days until told to stop.
        while not self.is_complete:
            self.rounds += 1
            done, pending = await workflow.wait(
                [
                    asyncio.create_task(workflow.sleep(timedelta(days=30))),
                    asyncio.create_task(workflow.wait_condition(lambda: self.is_complete)),
                ],
                return_when=asyncio.FIRST_COMPLETED,
            )
            assert len(done) == 1 and len(pending) == 1
            for task in pending:
                task.cancel()
        return self.rounds

    @workflow.signal
    def complete(self) -> None:
        self.is_complete = True


async def test_wait_returns_lists_in_the_order_given(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[WaitAll]):
        result = await env.client.execute_workflow(WaitAll.run, [3, 1, 2], id="w", task_queue="q")

    assert result == [3, 1, 2]


async def test_wait_for_the_first_of_a_timer_and_a_signal(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[WaitFirst]):
        handle = await env.client.start_workflow(WaitFirst.run, id="w", task_queue="q")
        await env.sleep(timedelta(days=65))
        await handle.signal(WaitFirst.complete)
        assert await handle.result() == 3

    events = [e.event_type for e in (await handle.fetch_history()).events]
    assert events.count("TimerStarted") == 3 and events.count("TimerFired") == 2


@activity.defn
async def check(host: str) -> str:
    if host.startswith("bad"):
        raise ApplicationError(f"{host} is down", non_retryable=True)
    return f"{host} ok"


@workflow.defn
class WaitWithTimeoutOrException:
    @workflow.run
    async def run(self, minutes: list[int]) -> list[str]:
        timers = [asyncio.create_task(after(m)) for m in minutes]
        done, pending = await workflow.wait(timers, timeout=timedelta(minutes=10))
        outcome = [f"{len(done)} done, {len(pending)} pending after 10 minutes"]
        done, pending = await workflow.wait(pending, timeout=timedelta(hours=1))
        outcome.append(f"{len(done)} done, {len(pending)} pending within the hour")

        timeout = timedelta(seconds=5)
        calls = [
            asyncio.create_task(workflow.execute_activity(check, h, start_to_close_timeout=timeout))
            for h in ("bad-a", "b")
        ]
        done, pending = await workflow.wait(calls, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t for t in done if t.exception() is not None]
        outcome.append(f"{len(failed)} failed")
        await workflow.wait(calls)
        return outcome


async def test_wait_with_a_timeout_or_until_the_first_exception(env: WorkflowEnvironment) -> None:
    async with Worker(
        env.client, task_queue="q", workflows=[WaitWithTimeoutOrException], activities=[check]
    ):
        handle = await env.client.start_workflow(
            WaitWithTimeoutOrException.run, [5, 30], id="w", task_queue="q"
        )
        result = await handle.result()

    assert result == [
        "1 done, 1 pending after 10 minutes",
        "1 done, 0 pending within the hour",
        "1 failed",
    ]
    events = [e.event_type for e in (await handle.fetch_history()).events]
    # The second wait's timer was cancelled once its task completed.
    assert events.count("TimerStarted") == 4 and events.count("TimerCanceled") == 1


def minutes_in() -> int:
    return int((workflow.now() - workflow.info().start_time).total_seconds() // 60)


@workflow.defn
class AsCompleted:
    @workflow.run
    async def run(self, minutes: list[int], timeout_minutes: int) -> list[str]:
        finished = []
        try:
            for next_done in workflow.as_completed(
                [after(m) for m in minutes], timeout=timedelta(minutes=timeout_minutes)
            ):
                finished.append(f"{await next_done} at {minutes_in()}")
        except TimeoutError:
            finished.append(f"timed out at {minutes_in()}")
        return finished


async def test_as_completed_yields_results_as_they_complete(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[AsCompleted]):
        result = await env.client.execute_workflow(
            AsCompleted.run, args=[[30, 10, 20], 60], id="a", task_queue="q"
        )
        timed_out = await env.client.execute_workflow(
            AsCompleted.run, args=[[30, 10, 90], 45], id="b", task_queue="q"
        )

    assert result == ["10 at 10", "20 at 20", "30 at 30"]
    assert timed_out == ["10 at 10", "30 at 30", "timed out at 45"]
