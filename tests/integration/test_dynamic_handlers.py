"""Dynamic workflows, activities and handlers take what nothing else is registered for,
with the name they were called by and their arguments unconverted (Temporal's
``dynamic=True`` and ``RawValue``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from perdure import Worker, activity, workflow
from perdure.client import WorkflowUpdateFailedError
from perdure.common import RawValue
from perdure.testing import WorkflowEnvironment


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}"


@activity.defn(dynamic=True)
async def any_activity(args: Sequence[RawValue]) -> str:
    converter = activity.payload_converter()
    words = [converter.from_payload(a.payload, str) for a in args]
    return f"{activity.info().activity_type}({', '.join(words)})"


@workflow.defn(dynamic=True)
class AnyWorkflow:
    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> list[str]:
        converter = workflow.payload_converter()
        name = converter.from_payload(args[0].payload, str)
        times = converter.from_payload(args[1].payload, int)
        timeout = timedelta(seconds=5)
        return [
            workflow.info().workflow_type,
            await workflow.execute_activity(greet, name, start_to_close_timeout=timeout),
            # Not registered by name: the worker's dynamic activity runs it.
            await workflow.execute_activity(
                "shout", args=[name] * times, start_to_close_timeout=timeout
            ),
        ]


@workflow.defn
class Named:
    @workflow.run
    async def run(self) -> str:
        return "named"


async def test_a_dynamic_workflow_and_activity_run_the_types_nothing_else_runs(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(
        env.client,
        task_queue="q",
        workflows=[AnyWorkflow, Named],
        activities=[greet, any_activity],
    ):
        result = await env.client.execute_workflow(
            "Greeter", args=["World", 2], id="g", task_queue="q"
        )
        named = await env.client.execute_workflow("Named", id="n", task_queue="q")

    assert result == ["Greeter", "Hello, World", "shout(World, World)"]
    assert named == "named"


@workflow.defn
class Inbox:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.done = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.done)
        return self.seen

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.signal(dynamic=True)
    async def other_signal(self, name: str, args: Sequence[RawValue]) -> None:
        values = [workflow.payload_converter().from_payload(a.payload) for a in args]
        self.seen.append(f"signal {name}{values}")

    @workflow.query
    def count(self) -> int:
        return len(self.seen)

    @workflow.query(dynamic=True)
    def other_query(self, name: str, args: Sequence[RawValue]) -> str:
        values = [workflow.payload_converter().from_payload(a.payload) for a in args]
        return f"query {name}{values} after {len(self.seen)}"

    @workflow.update
    def rename(self, index: int, text: str) -> str:
        self.seen[index] = text
        return text

    @workflow.update(dynamic=True)
    def other_update(self, name: str, args: Sequence[RawValue]) -> int:
        self.seen.append(f"update {name}")
        return len(args)

    @other_update.validator
    def check_other_update(self, name: str, args: Sequence[RawValue]) -> None:
        if name.startswith("forbidden"):
            raise ValueError(f"{name} is not allowed")


async def test_dynamic_signal_query_and_update_handlers_take_the_unknown_names(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Inbox]):
        handle = await env.client.start_workflow(Inbox.run, id="i", task_queue="q")
        await handle.signal("note", args=["a", 1])
        await handle.signal("ping")
        assert await handle.query(Inbox.count) == 2  # the named one
        assert await handle.query("peek", "x") == "query peek['x'] after 2"
        assert await handle.execute_update("bump", args=[1, 2, 3]) == 3
        assert await handle.execute_update(Inbox.rename, args=[0, "first"]) == "first"
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            await handle.execute_update("forbidden_thing")
        assert "forbidden_thing is not allowed" in str(rejected.value.cause)
        await handle.signal(Inbox.finish)
        result = await handle.result()
        # Answered by replay now that the workflow is closed.
        assert await handle.query("peek") == "query peek[] after 3"

    assert result == ["first", "signal ping[]", "update bump"]
    events = [e.event_type for e in (await handle.fetch_history()).events]
    assert events.count("WorkflowExecutionUpdateAccepted") == 2  # the rejected one left none


@workflow.defn
class CallsByFunction:
    @workflow.run
    async def run(self) -> str:
        try:
            workflow.start_activity(any_activity, start_to_close_timeout=timedelta(seconds=1))
        except TypeError as exc:
            return str(exc)
        return "started"


async def test_a_dynamic_workflow_activity_or_handler_is_called_by_a_name_not_a_function(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[CallsByFunction, Inbox]):
        message = await env.client.execute_workflow(CallsByFunction.run, id="c", task_queue="q")
        with pytest.raises(TypeError, match="is a dynamic workflow"):
            await env.client.start_workflow(AnyWorkflow.run, id="a", task_queue="q")
        handle = await env.client.start_workflow(Inbox.run, id="i", task_queue="q")
        with pytest.raises(TypeError, match="is a dynamic signal handler"):
            await handle.signal(Inbox.other_signal)
        await handle.terminate()

    assert "any_activity' is a dynamic activity" in message


def test_dynamic_definitions_are_checked_when_declared() -> None:
    with pytest.raises(TypeError, match="name= or dynamic=True"):
        workflow.defn(name="X", dynamic=True)
    with pytest.raises(TypeError, match="name= or dynamic=True"):
        activity.defn(name="x", dynamic=True)
    with pytest.raises(TypeError, match=r"must take \(self, args: Sequence\[RawValue\]\)"):

        @workflow.defn(dynamic=True)
        class TwoArgs:
            @workflow.run
            async def run(self, a: str, b: str) -> None: ...

    with pytest.raises(TypeError, match=r"must take \(self, name: str, args"):

        class OneArg:
            @workflow.signal(dynamic=True)
            def any_signal(self, args: Sequence[RawValue]) -> None: ...

    with pytest.raises(TypeError, match="must take one parameter"):

        @activity.defn(dynamic=True)
        async def two(a: str, b: str) -> None: ...


@workflow.defn(dynamic=True)
class OtherAnyWorkflow:
    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> None: ...


@activity.defn(dynamic=True)
async def other_any_activity(args: Sequence[RawValue]) -> None: ...


async def test_a_worker_has_at_most_one_dynamic_workflow_and_one_dynamic_activity(
    env: WorkflowEnvironment,
) -> None:
    with pytest.raises(ValueError, match="More than one dynamic workflow"):
        Worker(env.client, task_queue="q", workflows=[AnyWorkflow, OtherAnyWorkflow])
    with pytest.raises(ValueError, match="More than one dynamic activity"):
        Worker(env.client, task_queue="q", activities=[any_activity, other_any_activity])
