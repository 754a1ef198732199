"""Running activities from workflows: sync and async, arguments and results, handles, and the
errors a workflow gets for a badly scheduled activity."""

import asyncio
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest

from perdure import activity, workflow
from perdure.client import WorkflowExecutionStatus, WorkflowFailureError
from perdure.common import RetryPolicy
from perdure.exceptions import ActivityError, ApplicationError, RetryState
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker

TIMEOUT = timedelta(seconds=10)
QUEUE = "activities"


@dataclass
class Order:
    id: str
    items: list[str]
    total: float


@dataclass
class Receipt:
    order_id: str
    count: int
    charged: float


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}"


@activity.defn
def shout(text: str) -> str:
    # A sync activity runs in the worker's thread pool, never on the event loop's thread.
    return f"{text.upper()} from {threading.current_thread() is threading.main_thread()}"


@activity.defn
async def charge(order: Order) -> Receipt:
    return Receipt(order_id=order.id, count=len(order.items), charged=order.total * 1.5)


@activity.defn
async def describe_call(name: str, times: int, excited: bool) -> str:
    return " ".join([name] * times) + ("!" if excited else ".")


@activity.defn(name="custom-receipt")
async def receipt_by_name(order_id: str) -> Receipt:
    return Receipt(order_id=order_id, count=1, charged=2.5)


@activity.defn
async def double(n: int) -> int:
    await asyncio.sleep(0)
    return n * 2


@workflow.defn
class GreetWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=TIMEOUT)


@workflow.defn
class ShoutWorkflow:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(shout, text, start_to_close_timeout=TIMEOUT)


@workflow.defn
class ChargeWorkflow:
    @workflow.run
    async def run(self, order: Order) -> Receipt:
        receipt = await workflow.execute_activity(charge, order, start_to_close_timeout=TIMEOUT)
        # The workflow itself must see a Receipt, not a dict.
        assert isinstance(receipt, Receipt)
        return receipt


@workflow.defn
class MultiArgWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            describe_call, args=["ho", 3, True], start_to_close_timeout=TIMEOUT
        )


@workflow.defn
class ByNameWorkflow:
    @workflow.run
    async def run(self, order_id: str) -> str:
        receipt = await workflow.execute_activity(
            "custom-receipt", order_id, result_type=Receipt, start_to_close_timeout=TIMEOUT
        )
        return f"{type(receipt).__name__}:{receipt.order_id}:{receipt.charged}"


@workflow.defn
class GatherWorkflow:
    @workflow.run
    async def run(self, count: int) -> list[int]:
        handles = [
            workflow.start_activity(double, n, start_to_close_timeout=TIMEOUT) for n in range(count)
        ]
        return list(await asyncio.gather(*handles))


@workflow.defn
class NoTimeoutWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(greet, "nobody")


@workflow.defn
class UnregisteredWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            "not-registered-anywhere",
            "x",
            result_type=str,
            start_to_close_timeout=TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=2),
        )


def worker(env: WorkflowEnvironment, *workflows: type) -> Worker:
    return Worker(
        env.client,
        task_queue=QUEUE,
        workflows=list(workflows),
        activities=[greet, shout, charge, describe_call, receipt_by_name, double],
    )


def new_id() -> str:
    return f"wf-{uuid.uuid4()}"


async def test_async_activity_result_reaches_workflow(env: WorkflowEnvironment) -> None:
    async with worker(env, GreetWorkflow):
        result = await env.client.execute_workflow(
            GreetWorkflow.run, "Ada", id=new_id(), task_queue=QUEUE
        )
    assert result == "Hello, Ada"


async def test_sync_activity_runs_off_the_event_loop_thread(env: WorkflowEnvironment) -> None:
    async with worker(env, ShoutWorkflow):
        result = await env.client.execute_workflow(
            ShoutWorkflow.run, "quiet", id=new_id(), task_queue=QUEUE
        )
    assert result == "QUIET from False"


async def test_dataclass_argument_and_result_round_trip(env: WorkflowEnvironment) -> None:
    order = Order(id="o-1", items=["a", "b", "c"], total=10.0)
    async with worker(env, ChargeWorkflow):
        receipt = await env.client.execute_workflow(
            ChargeWorkflow.run, order, id=new_id(), task_queue=QUEUE
        )
    assert receipt == Receipt(order_id="o-1", count=3, charged=15.0)


async def test_multiple_arguments_arrive_in_order(env: WorkflowEnvironment) -> None:
    async with worker(env, MultiArgWorkflow):
        result = await env.client.execute_workflow(
            MultiArgWorkflow.run, id=new_id(), task_queue=QUEUE
        )
    assert result == "ho ho ho!"


async def test_activity_by_name_decodes_result_type(env: WorkflowEnvironment) -> None:
    async with worker(env, ByNameWorkflow):
        result = await env.client.execute_workflow(
            ByNameWorkflow.run, "o-7", id=new_id(), task_queue=QUEUE
        )
    assert result == "Receipt:o-7:2.5"


async def test_start_activity_handles_gather(env: WorkflowEnvironment) -> None:
    async with worker(env, GatherWorkflow):
        result = await env.client.execute_workflow(
            GatherWorkflow.run, 5, id=new_id(), task_queue=QUEUE
        )
    assert result == [0, 2, 4, 6, 8]


async def test_missing_timeouts_fail_the_workflow_task(env: WorkflowEnvironment) -> None:
    async with worker(env, NoTimeoutWorkflow):
        handle = await env.client.start_workflow(
            NoTimeoutWorkflow.run, id=new_id(), task_queue=QUEUE
        )
        await env.sleep(1)
        desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING
    failure = desc.last_workflow_task_failure
    assert failure is not None
    assert "start_to_close_timeout" in failure.message
    assert "schedule_to_close_timeout" in failure.message
    assert "greet" in failure.message
    history = await handle.fetch_history()
    assert not [e for e in history.events if e.event_type.value == "ActivityTaskScheduled"]


async def test_unregistered_activity_fails_attempts_and_worker_keeps_running(
    env: WorkflowEnvironment,
) -> None:
    async with worker(env, UnregisteredWorkflow, GreetWorkflow):
        with pytest.raises(WorkflowFailureError) as exc_info:
            await env.client.execute_workflow(
                UnregisteredWorkflow.run, id=new_id(), task_queue=QUEUE
            )
        # The same worker still serves other workflows.
        result = await env.client.execute_workflow(
            GreetWorkflow.run, "still here", id=new_id(), task_queue=QUEUE
        )
    assert result == "Hello, still here"
    error = exc_info.value.cause
    assert isinstance(error, ActivityError)
    assert error.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert isinstance(error.cause, ApplicationError)
    assert "not-registered-anywhere" in error.cause.message
    assert "not registered" in error.cause.message
