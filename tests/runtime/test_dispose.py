"""A closed run's instance, disposed of by its worker, is freed by reference counting at once:
not left, as a cycle of its loop, tasks and hooks, to a garbage collection that walks every
object alive. An instance whose run is not closed, or that still has a task pending, is left
whole."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from test_runner import CONV, T0, History, TwoSteps, runner

from perdure import workflow
from perdure._common.commands import CompleteWorkflow
from perdure._common.events import EventType
from perdure._runtime import WorkflowRunner


@contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def finished() -> WorkflowRunner:
    """A runner of TwoSteps taken through both activities to its CompleteWorkflow."""
    h = History("ada")
    r = runner(TwoSteps)
    commands = r.apply(h.events, task_time=T0)
    for seq, result in ((1, "hi ada"), (2, "HI ADA")):
        h.task_completed()
        h.record(commands)
        r.recorded(len(h.events) + 1)
        h.activity_completed(seq, result)
        commands = r.apply(h.events[-1:], task_time=T0 + seq)
    assert isinstance(commands[0], CompleteWorkflow) and r.closed
    return r


def test_a_closed_runs_instance_is_freed_as_soon_as_it_is_disposed_of() -> None:
    with collector_off():
        r = finished()
        instance = weakref.ref(r.instance)  # type: ignore[arg-type]
        loop = weakref.ref(r.instance.loop)  # type: ignore[union-attr]
        r.dispose()
        assert r.closed
        del r
        assert instance() is None and loop() is None


def test_without_being_disposed_of_it_waits_for_the_collector() -> None:
    # What dispose() saves: the instance is a cycle, alive until a collection.
    with collector_off():
        r = finished()
        instance = weakref.ref(r.instance)  # type: ignore[arg-type]
        del r
        assert instance() is not None
        gc.collect()
        assert instance() is None


def test_a_run_still_open_is_left_whole_and_goes_on() -> None:
    h = History("ada")
    r = runner(TwoSteps)
    first = r.apply(h.events, task_time=T0)
    r.dispose()
    assert not r.closed
    h.task_completed()
    h.record(first)
    r.recorded(len(h.events) + 1)
    h.activity_completed(1, "hi ada")
    second = r.apply(h.events[-1:], task_time=T0 + 1)
    assert [c.activity_type for c in second] == ["shout"]  # type: ignore[attr-defined]


FINALLY_RAN: list[str] = []


@workflow.defn(name="W")
class ClosesWithAHandlerPending:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "done"

    @workflow.signal
    async def start(self) -> None:
        self.go = True
        try:
            await workflow.wait_condition(lambda: False)
        finally:
            FINALLY_RAN.append("handler")


def test_a_closed_run_with_a_task_pending_is_left_to_the_collector() -> None:
    h = History()
    h.add(EventType.WORKFLOW_EXECUTION_SIGNALED, signal_name="start", input=CONV.to_payloads([]))
    with collector_off():
        r = runner(ClosesWithAHandlerPending)
        commands = r.apply(h.events, task_time=T0)
        assert isinstance(commands[0], CompleteWorkflow) and r.closed
        instance = weakref.ref(r.instance)  # type: ignore[arg-type]
        r.dispose()
        assert FINALLY_RAN == []  # the pending handler's code was not closed here
        assert r.instance is not None and r.instance.loop.pending_tasks()
        del r
        assert instance() is not None  # whole, for the collector
    FINALLY_RAN.clear()
