"""The workflows whose recorded histories are kept in ``histories/``.

Each history was recorded by ``record.py`` with the engine of its day, and is replayed by
``test_golden_histories.py`` against today's engine and these classes. If an engine change
makes one fail, the change would break workflows that are running in users' databases: fix
the engine, don't re-record. Change these classes only by adding new ones (and recording
their histories), never by editing what a recorded history ran.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from perdure import ApplicationError, RetryPolicy, activity, client, worker, workflow
from perdure.common import SearchAttributeKey
from perdure.converter import DataConverter

STEP = timedelta(seconds=30)
FAST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
PRIORITY = SearchAttributeKey.for_int("GoldenPriority")


@dataclass
class Order:
    order_id: str
    amount: int


@activity.defn
async def charge(order: Order) -> str:
    if activity.info().attempt < 2:
        raise RuntimeError("card network timeout")
    return f"charged {order.amount} for {order.order_id}"


@activity.defn
async def refund(order: Order) -> str:
    return f"refunded {order.order_id}"


@activity.defn
async def ship(order: Order) -> str:
    raise ApplicationError("no courier for this address", non_retryable=True)


@activity.defn
async def greet(name: str) -> str:
    return f"hello {name}"


@activity.defn
async def slow(seconds: float) -> str:
    for _ in range(int(seconds * 100)):
        activity.heartbeat()
        await asyncio.sleep(0.01)
    return "done"


@workflow.defn
class SagaGolden:
    """Activities with a retry, a non-retryable failure and a compensation."""

    @workflow.run
    async def run(self, order: Order) -> list[str]:
        done: list[str] = []
        done.append(
            await workflow.execute_activity(
                charge, order, start_to_close_timeout=STEP, retry_policy=FAST_RETRY
            )
        )
        try:
            await workflow.execute_activity(ship, order, start_to_close_timeout=STEP)
        except Exception:
            done.append(await workflow.execute_activity(refund, order, start_to_close_timeout=STEP))
        return done


@workflow.defn
class SignalsTimersGolden:
    """Timers, signals, a condition with a timeout, an update, memo and search attributes,
    and the replay-safe clock, randomness and uuid."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.closed = False

    @workflow.signal
    async def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    async def close(self) -> None:
        self.closed = True

    @workflow.update
    async def rename(self, index: int, name: str) -> str:
        old, self.items[index] = self.items[index], name
        return old

    @rename.validator
    def _check_rename(self, index: int, name: str) -> None:
        if not 0 <= index < len(self.items):
            raise ValueError(f"no item {index}")

    @workflow.query
    def count(self) -> int:
        return len(self.items)

    @workflow.run
    async def run(self) -> dict[str, object]:
        started = workflow.now()
        await asyncio.sleep(60)
        workflow.upsert_memo({"stage": "collecting"})
        workflow.upsert_search_attributes([PRIORITY.value_set(3)])
        timed_out = False
        try:
            await workflow.wait_condition(lambda: self.closed, timeout=timedelta(hours=1))
        except TimeoutError:
            timed_out = True
        pick = workflow.random().randint(0, 1000)
        token = str(workflow.uuid4())
        return {
            "items": list(self.items),
            "timed_out": timed_out,
            "elapsed": (workflow.now() - started).total_seconds(),
            "pick": pick,
            "token_len": len(token),
        }


@workflow.defn
class ChildGolden:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_local_activity(greet, name, start_to_close_timeout=STEP)


@workflow.defn
class ParentGolden:
    """Children in parallel, a patch, a cancelled activity and continue-as-new."""

    @workflow.run
    async def run(self, names: list[str], generation: int) -> list[str]:
        results = list(
            await asyncio.gather(
                *(
                    workflow.execute_child_workflow(
                        ChildGolden.run, n, id=f"{workflow.info().workflow_id}-{generation}-{n}"
                    )
                    for n in names
                )
            )
        )
        if workflow.patched("shout"):
            results = [r.upper() for r in results]
        slow_step = workflow.start_activity(slow, 5.0, start_to_close_timeout=STEP)
        slow_step.cancel()
        try:
            await slow_step
        except Exception:
            results.append("slow step cancelled")
        if generation == 0:
            workflow.continue_as_new(args=[names[:1], 1])
        return results


class Stamping(client.Interceptor, worker.Interceptor):
    """Puts a ``golden`` header on every call it can (the ``headers`` scenario): histories
    with headers on their start, signals, update, activities, children and continue-as-new."""

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _StampingClient(next)

    def workflow_interceptor_class(
        self, input: worker.WorkflowInterceptorClassInput
    ) -> type[worker.WorkflowInboundInterceptor]:
        return _StampingWorkflow


def _stamp(input: Any, value: str) -> None:
    payload = DataConverter.default.payload_converter.to_payload(value)
    input.headers = {**input.headers, "golden": payload}


class _StampingClient(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> Any:
        _stamp(input, f"start {input.id}")
        return await super().start_workflow(input)

    async def signal_workflow(self, input: client.SignalWorkflowInput) -> None:
        _stamp(input, f"signal {input.signal}")
        await super().signal_workflow(input)

    async def start_workflow_update(self, input: client.StartWorkflowUpdateInput) -> Any:
        _stamp(input, f"update {input.update}")
        return await super().start_workflow_update(input)


class _StampingWorkflow(worker.WorkflowInboundInterceptor):
    def init(self, outbound: worker.WorkflowOutboundInterceptor) -> None:
        super().init(_StampingOutbound(outbound))


class _StampingOutbound(worker.WorkflowOutboundInterceptor):
    def start_activity(self, input: worker.StartActivityInput) -> Any:
        _stamp(input, f"activity {input.activity}")
        return super().start_activity(input)

    async def start_child_workflow(self, input: worker.StartChildWorkflowInput) -> Any:
        _stamp(input, f"child {input.id}")
        return await super().start_child_workflow(input)

    def continue_as_new(self, input: worker.ContinueAsNewInput) -> NoReturn:
        _stamp(input, "continued")
        super().continue_as_new(input)


GOLDEN_WORKFLOWS = [SagaGolden, SignalsTimersGolden, ChildGolden, ParentGolden]
GOLDEN_ACTIVITIES = [charge, refund, ship, greet, slow]
