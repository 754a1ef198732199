"""Child workflows and external handles: results, failures, parent close policies,
cancellation types, signalling and cancelling other workflows."""

from __future__ import annotations

import asyncio

import pytest

from perdure import Worker, workflow
from perdure.client import WorkflowExecutionStatus, WorkflowFailureError
from perdure.exceptions import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
)
from perdure.testing import WorkflowEnvironment
from perdure.workflow import ChildWorkflowCancellationType, ParentClosePolicy


@workflow.defn
class Square:
    @workflow.run
    async def run(self, n: int) -> int:
        await workflow.sleep(abs(n))
        if n < 0:
            raise ApplicationError("negative", type="Negative")
        return n * n


@workflow.defn
class FanOut:
    @workflow.run
    async def run(self, numbers: list[int]) -> dict[str, object]:
        results = await asyncio.gather(
            *(workflow.execute_child_workflow(Square.run, n, id=f"sq-{n}") for n in numbers),
            return_exceptions=True,
        )
        ok = [r for r in results if isinstance(r, int)]
        failed = [
            f"{r.workflow_id}:{r.cause}" for r in results if isinstance(r, ChildWorkflowError)
        ]
        return {"ok": ok, "failed": failed, "parent_of": workflow.info().workflow_id}


async def test_children_results_and_failures_reach_the_parent(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[FanOut, Square]):
        result = await env.client.execute_workflow(
            FanOut.run, [1, 2, -3, 4], id="fan", task_queue="q"
        )
    assert result == {"ok": [1, 4, 16], "failed": ["sq--3:negative"], "parent_of": "fan"}
    child = await env.client.get_workflow_handle("sq-2").describe()
    assert child.status == WorkflowExecutionStatus.COMPLETED


@workflow.defn
class WhoIsMyParent:
    @workflow.run
    async def run(self) -> str:
        parent = workflow.info().parent
        return parent.workflow_id if parent else "none"


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, policy: int) -> str:
        await workflow.start_child_workflow(
            Square.run, 1000, id="long-child", parent_close_policy=ParentClosePolicy(policy)
        )
        who = await workflow.execute_child_workflow(WhoIsMyParent.run, id="who")
        return str(who)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (ParentClosePolicy.TERMINATE, WorkflowExecutionStatus.TERMINATED),
        (ParentClosePolicy.REQUEST_CANCEL, WorkflowExecutionStatus.CANCELED),
        (ParentClosePolicy.ABANDON, WorkflowExecutionStatus.RUNNING),
    ],
)
async def test_parent_close_policy(
    env: WorkflowEnvironment, policy: ParentClosePolicy, expected: WorkflowExecutionStatus
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Parent, Square, WhoIsMyParent]):
        assert (
            await env.client.execute_workflow(Parent.run, int(policy), id="parent", task_queue="q")
            == "parent"
        )
        await env.sleep(0)
        status = (await env.client.get_workflow_handle("long-child").describe()).status
    assert status == expected


@workflow.defn
class CancelsChild:
    @workflow.run
    async def run(self, cancellation_type: int) -> str:
        child = await workflow.start_child_workflow(
            Square.run,
            500,
            id="victim",
            cancellation_type=ChildWorkflowCancellationType(cancellation_type),
        )
        await workflow.sleep(1)
        child.cancel()
        try:
            await child
        except ChildWorkflowError as err:
            return f"{type(err.cause).__name__}"
        return "not cancelled"


@pytest.mark.parametrize(
    ("cancellation_type", "child_status"),
    [
        # The parent does not wait: it closes first, and its close policy terminates the
        # child before the child handled the cancellation request.
        (ChildWorkflowCancellationType.TRY_CANCEL, WorkflowExecutionStatus.TERMINATED),
        (
            ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
            WorkflowExecutionStatus.CANCELED,
        ),
        # The parent returns once the request is delivered; whether the child handles it
        # before the parent's close policy terminates it is a race.
        (
            ChildWorkflowCancellationType.WAIT_CANCELLATION_REQUESTED,
            {WorkflowExecutionStatus.CANCELED, WorkflowExecutionStatus.TERMINATED},
        ),
    ],
)
async def test_cancelling_a_child(
    env: WorkflowEnvironment,
    cancellation_type: ChildWorkflowCancellationType,
    child_status: WorkflowExecutionStatus | set[WorkflowExecutionStatus],
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[CancelsChild, Square]):
        result = await env.client.execute_workflow(
            CancelsChild.run, int(cancellation_type), id="canceller", task_queue="q"
        )
        assert result == "CancelledError"
        await env.sleep(0)
        victim = await env.client.get_workflow_handle("victim").describe()
    expected = child_status if isinstance(child_status, set) else {child_status}
    assert victim.status in expected


@workflow.defn
class Cancelled:
    @workflow.run
    async def run(self) -> str:
        await workflow.execute_child_workflow(Square.run, 500, id="inner")
        return "finished"


async def test_cancelling_a_parent_reaches_its_child(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Cancelled, Square]):
        handle = await env.client.start_workflow(Cancelled.run, id="outer", task_queue="q")
        await env.sleep(1)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert isinstance(info.value.cause, CancelledError)
        inner = await env.client.get_workflow_handle("inner").describe()
    assert inner.status == WorkflowExecutionStatus.CANCELED


@workflow.defn
class Listener:
    def __init__(self) -> None:
        self.heard: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: len(self.heard) >= 2)
        return self.heard

    @workflow.signal
    def hear(self, word: str) -> None:
        self.heard.append(word)


@workflow.defn
class Talker:
    @workflow.run
    async def run(self) -> str:
        child = await workflow.start_child_workflow(Listener.run, id="listener")
        await child.signal(Listener.hear, "hello")
        await workflow.get_external_workflow_handle("listener").signal(Listener.hear, "world")
        heard = await child
        try:
            await workflow.get_external_workflow_handle("nobody").signal("hear", "x")
        except ApplicationError as err:
            return f"{' '.join(heard)} / {err.type}"
        return " ".join(heard)


async def test_signalling_children_and_external_workflows(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Talker, Listener]):
        result = await env.client.execute_workflow(Talker.run, id="talker", task_queue="q")
    assert result == "hello world / ExternalWorkflowExecutionNotFound"


@workflow.defn
class Killer:
    @workflow.run
    async def run(self) -> None:
        await workflow.get_external_workflow_handle("target").cancel()


async def test_cancelling_an_external_workflow(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Killer, Square]):
        target = await env.client.start_workflow(Square.run, 100, id="target", task_queue="q")
        await env.client.execute_workflow(Killer.run, id="killer", task_queue="q")
        with pytest.raises(WorkflowFailureError) as info:
            await target.result()
        assert isinstance(info.value.cause, CancelledError)


@workflow.defn
class Duplicate:
    @workflow.run
    async def run(self) -> str:
        await workflow.start_child_workflow(Square.run, 100, id="dup")
        try:
            await workflow.start_child_workflow(Square.run, 100, id="dup")
        except Exception as err:
            return type(err).__name__
        return "started twice"


async def test_a_duplicate_child_id_fails_the_start(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Duplicate, Square]):
        result = await env.client.execute_workflow(Duplicate.run, id="d", task_queue="q")
    assert result == "WorkflowAlreadyStartedError"


async def test_terminating_a_child_tells_the_parent(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Cancelled, Square]):
        handle = await env.client.start_workflow(Cancelled.run, id="outer", task_queue="q")
        await env.sleep(1)
        await env.client.get_workflow_handle("inner").terminate("enough")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        cause = info.value.cause
        assert isinstance(cause, ChildWorkflowError)
        assert isinstance(cause.cause, TerminatedError)
