"""Every workflow answers ``__stack_trace`` (where each of its coroutines waits) and
``__perdure_workflow_metadata`` (what it handles) without a handler of its own, from a cached
instance and from a replayed one alike, and without touching its history."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

import pytest

from perdure import Worker, workflow
from perdure.client import WorkflowHandle, WorkflowQueryFailedError
from perdure.common import RawValue
from perdure.testing import WorkflowEnvironment


@workflow.defn
class Approval:
    # Nothing here waits on a timer: the clock skipping ahead between two queries would add
    # events to the history they compare.
    def __init__(self) -> None:
        self.reviewed = False
        self.approved = False
        self.tick = asyncio.Event()
        self.ticks = 0

    @workflow.run
    async def run(self) -> int:
        ticker = asyncio.create_task(self.count_ticks())
        await self.wait_for_approval()
        ticker.cancel()
        return self.ticks

    async def wait_for_approval(self) -> None:
        await workflow.wait_condition(lambda: self.approved)

    async def count_ticks(self) -> None:
        while True:
            await self.tick.wait()
            self.tick.clear()
            self.ticks += 1

    @workflow.signal(description="Approve the request")
    async def approve(self) -> None:
        await workflow.wait_condition(lambda: self.reviewed)
        self.approved = True

    @workflow.signal(dynamic=True)
    def anything(self, name: str, args: Sequence[RawValue]) -> None: ...

    @workflow.query(description="Ticks so far")
    def ticks_so_far(self) -> int:
        return self.ticks

    @workflow.update
    def reset_ticks(self) -> None:
        self.ticks = 0


def frames(trace: str) -> list[str]:
    """The frames of a stack trace, as file, line and function (task reprs name tasks by
    a process-wide counter, so they differ between instances)."""
    return re.findall(r'File "[^"]+", line \d+, in \w+', trace)


async def event_count(handle: WorkflowHandle[Any]) -> int:
    return len((await handle.fetch_history()).events)


async def test_stack_trace_shows_where_each_coroutine_waits_cached_or_replayed(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Approval]):
        handle = await env.client.start_workflow(Approval.run, id="a", task_queue="q")
        await handle.signal(Approval.approve)
        await env.sleep(0)  # the run, the ticker and the signal handler are all waiting
        events = await event_count(handle)
        cached = await handle.query("__stack_trace")
    async with Worker(env.client, task_queue="q", workflows=[Approval], max_cached_workflows=0):
        replayed = await handle.query("__stack_trace")
        assert await event_count(handle) == events  # queries leave no trace

    stacks = cached.split("\n\n")
    assert len(stacks) == 3
    assert all(s.startswith("Stack for <Task pending") for s in stacks)
    run, ticker, signal = stacks
    assert f'File "{__file__}", line' in run
    assert "in run\n" in run and "in wait_for_approval\n" in run
    assert "await workflow.wait_condition(lambda: self.approved)" in run  # the source line
    assert "in count_ticks\n" in ticker and "await self.tick.wait()" in ticker
    assert "name='signal:approve'" in signal and "in approve\n" in signal
    assert frames(replayed) == frames(cached)


async def test_metadata_names_the_handlers_with_their_descriptions(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Approval]):
        handle = await env.client.start_workflow(Approval.run, id="a", task_queue="q")
        metadata = await handle.query("__perdure_workflow_metadata")
        assert await handle.query("__temporal_workflow_metadata") == metadata
        with pytest.raises(WorkflowQueryFailedError) as unknown:
            await handle.query("nothing")
        await handle.terminate()

    def named(*names: str, described: dict[str, str] | None = None) -> list[dict[str, str]]:
        return [{"name": n, "description": (described or {}).get(n, "")} for n in names]

    assert metadata == {
        "definition": {
            "type": "Approval",
            "query_definitions": named(
                "__perdure_workflow_metadata",
                "__stack_trace",
                "__temporal_workflow_metadata",
                "ticks_so_far",
                described={"ticks_so_far": "Ticks so far"},
            ),
            "signal_definitions": named(
                "", "approve", described={"approve": "Approve the request"}
            ),
            "update_definitions": named("reset_ticks"),
        }
    }
    assert "known queries: __perdure_workflow_metadata, __stack_trace" in str(unknown.value)


@workflow.defn(dynamic=True)
class Registers:
    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> None:
        workflow.set_query_handler("status", lambda: "fine")
        workflow.set_signal_handler("poke", lambda: None)
        await workflow.wait_condition(lambda: False)


async def test_metadata_of_a_dynamic_workflow_has_its_type_and_run_time_handlers(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Registers]):
        handle = await env.client.start_workflow("Anything", id="r", task_queue="q")
        metadata = await handle.query("__perdure_workflow_metadata")
        await handle.terminate()

    definition = metadata["definition"]
    assert definition["type"] == "Anything"
    assert [q["name"] for q in definition["query_definitions"]] == [
        "__perdure_workflow_metadata",
        "__stack_trace",
        "__temporal_workflow_metadata",
        "status",
    ]
    assert definition["signal_definitions"] == [{"name": "poke", "description": ""}]
    assert definition["update_definitions"] == []
