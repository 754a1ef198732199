"""Runs of a workflow id: continue-as-new, workflow retries, run and execution timeouts,
start delay, signal-with-start, memo."""

from __future__ import annotations

from datetime import timedelta

import pytest

from perdure import Worker, workflow
from perdure.client import WorkflowExecutionStatus, WorkflowFailureError
from perdure.common import RetryPolicy
from perdure.exceptions import ApplicationError, TimeoutError
from perdure.testing import WorkflowEnvironment


@workflow.defn
class Counter:
    @workflow.run
    async def run(self, n: int, total: int) -> dict[str, object]:
        if n == 0:
            return {
                "total": total,
                "continued_from": workflow.info().continued_run_id,
                "memo": workflow.memo(),
            }
        await workflow.sleep(1)
        workflow.continue_as_new(args=[n - 1, total + n])


async def test_continue_as_new_chains_runs_and_result_follows_them(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Counter]):
        handle = await env.client.start_workflow(
            Counter.run, args=[3, 0], id="counter", task_queue="q", memo={"owner": "ada"}
        )
        result = await handle.result()
        assert result["total"] == 6
        assert result["memo"] == {"owner": "ada"}  # carried to every run
        first = env.client.get_workflow_handle("counter", run_id=handle.result_run_id)
        assert (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
        with pytest.raises(WorkflowFailureError):
            await first.result(follow_runs=False)
        latest = await env.client.get_workflow_handle("counter").describe()
        assert latest.status == WorkflowExecutionStatus.COMPLETED
        assert latest.run_id != handle.result_run_id
        assert latest.first_execution_run_id == handle.result_run_id
        assert result["continued_from"] is not None
        assert len((await env.client.get_workflow_handle("counter").fetch_history()).events) < 6


@workflow.defn
class Memo:
    @workflow.run
    async def run(self) -> str:
        workflow.upsert_memo({"stage": "half", "drop": None})
        await workflow.sleep(5)
        return str(workflow.memo_value("stage"))


async def test_memo_is_set_at_start_and_upserted(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Memo]):
        handle = await env.client.start_workflow(
            Memo.run, id="memo", task_queue="q", memo={"drop": 1, "keep": [1, 2]}
        )
        assert await handle.result() == "half"
        assert (await handle.describe()).memo == {"keep": [1, 2], "stage": "half"}


@workflow.defn
class Retried:
    @workflow.run
    async def run(self, fail_times: int) -> int:
        attempt = workflow.info().attempt
        if attempt <= fail_times:
            raise ApplicationError(f"attempt {attempt} failed")
        return attempt


async def test_workflow_retry_policy_starts_new_attempts(env: WorkflowEnvironment) -> None:
    policy = RetryPolicy(initial_interval=timedelta(seconds=10), maximum_attempts=5)
    async with Worker(env.client, task_queue="q", workflows=[Retried]):
        start = await env.get_current_time()
        result = await env.client.execute_workflow(
            Retried.run, 2, id="retried", task_queue="q", retry_policy=policy
        )
        assert result == 3
        waited = (await env.get_current_time()) - start
        assert waited >= timedelta(seconds=30)  # 10 s, then 20 s of backoff
        assert (await env.client.get_workflow_handle("retried").describe()).attempt == 3

        with pytest.raises(WorkflowFailureError) as info:
            await env.client.execute_workflow(
                Retried.run,
                10,
                id="exhausted",
                task_queue="q",
                retry_policy=RetryPolicy(maximum_attempts=2),
            )
        assert isinstance(info.value.cause, ApplicationError)
        assert "attempt 2 failed" in str(info.value.cause)


async def test_no_retry_policy_means_one_attempt(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Retried]):
        with pytest.raises(WorkflowFailureError):
            await env.client.execute_workflow(Retried.run, 1, id="once", task_queue="q")
        assert (await env.client.get_workflow_handle("once").describe()).attempt == 1


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(seconds)
        return "woke"


async def test_run_timeout_ends_the_run(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Sleeper]):
        handle = await env.client.start_workflow(
            Sleeper.run, 3600, id="late", task_queue="q", run_timeout=timedelta(minutes=1)
        )
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert isinstance(info.value.cause, TimeoutError)
        assert (await handle.describe()).status == WorkflowExecutionStatus.TIMED_OUT
        assert (
            await env.client.execute_workflow(
                Sleeper.run, 30, id="in-time", task_queue="q", run_timeout=timedelta(minutes=1)
            )
            == "woke"
        )


async def test_execution_timeout_spans_continued_runs(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Counter]):
        handle = await env.client.start_workflow(
            Counter.run,
            args=[100, 0],
            id="bounded",
            task_queue="q",
            execution_timeout=timedelta(seconds=10),
        )
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert isinstance(info.value.cause, TimeoutError)
        latest = await env.client.get_workflow_handle("bounded").describe()
        assert latest.status == WorkflowExecutionStatus.TIMED_OUT
        assert latest.run_id != handle.result_run_id  # it had continued as new meanwhile


@workflow.defn
class Greeter:
    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: len(self.names) >= 2)
        return self.names

    @workflow.signal
    def greet(self, name: str) -> None:
        self.names.append(name)


async def test_signal_with_start_starts_or_signals(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Greeter]):
        first = await env.client.start_workflow(
            Greeter.run, id="g", task_queue="q", start_signal="greet", start_signal_args=["a"]
        )
        second = await env.client.start_workflow(
            Greeter.run, id="g", task_queue="q", start_signal="greet", start_signal_args=["b"]
        )
        assert second.result_run_id == first.result_run_id
        assert await first.result() == ["a", "b"]


async def test_start_delay_holds_the_first_task(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Sleeper]):
        before = await env.get_current_time()
        result = await env.client.execute_workflow(
            Sleeper.run, 1, id="delayed", task_queue="q", start_delay=timedelta(hours=2)
        )
        assert result == "woke"
        assert (await env.get_current_time()) - before >= timedelta(hours=2, seconds=1)


async def test_signal_with_start_cuts_a_start_delay_short(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Greeter]):
        before = await env.get_current_time()
        first = await env.client.start_workflow(
            Greeter.run, id="wait", task_queue="q", start_delay=timedelta(hours=2)
        )
        await env.client.start_workflow(
            Greeter.run, id="wait", task_queue="q", start_signal="greet", start_signal_args=["x"]
        )
        await first.signal(Greeter.greet, "y")
        assert await first.result() == ["x", "y"]
        assert (await env.get_current_time()) - before < timedelta(hours=2)
