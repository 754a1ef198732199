"""An instance its worker is done with (its run closed, or evicted from the cache) is disposed
of: its code still waiting is ended at once, on its own loop, as Temporal ends an evicted
workflow, and the instance is freed by reference counting, not left, as a cycle of its loop,
tasks and hooks, to a garbage collection that walks every object alive. Left to the collector,
that code's ``finally`` blocks would run whenever it next ran, inside another workflow's
activation, adding to that workflow's commands."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from test_runner import CONV, T0, History, TwoSteps, runner

from perdure import workflow
from perdure._common.commands import CompleteWorkflow, ScheduleActivity, StartTimer
from perdure._common.events import EventType
from perdure._runtime import WorkflowRunner
from perdure._runtime._ending import WorkflowEvicted
from perdure.workflow._definition import WorkflowDefinition


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


ENDED: list[tuple[str, bool, str]] = []


@workflow.defn(name="W")
class SleepsThenCleansUp:
    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.sleep(1000)
        finally:
            # What a saga's compensation or a cleanup does: start an activity.
            try:
                workflow.start_activity("cleanup", start_to_close_timeout=timedelta(seconds=5))
                outcome = "started"
            except WorkflowEvicted:
                outcome = "refused"
            ENDED.append((workflow.info().workflow_id, workflow.unsafe.is_replaying(), outcome))


@workflow.defn(name="W")
class CollectsInItsTask:
    @workflow.run
    async def run(self) -> None:
        gc.collect()  # a collection falls wherever the allocations make it fall
        await workflow.sleep(5)


def sleeping(workflow_id: str) -> WorkflowRunner:
    r = WorkflowRunner(
        WorkflowDefinition.from_class(SleepsThenCleansUp), workflow_id=workflow_id, run_id="r"
    )
    assert r.apply(History().events, task_time=T0) == [StartTimer(1, 1000.0)]
    return r


def test_an_open_run_disposed_of_ends_its_code_at_once_on_its_own_loop() -> None:
    with collector_off():
        r = sleeping("evicted")
        instance = weakref.ref(r.instance)  # type: ignore[arg-type]
        r.dispose()
        # The finally block ran now, seeing its own run, replaying, its new work refused.
        assert ENDED == [("evicted", True, "refused")]
        del r
        assert instance() is None
    ENDED.clear()


def test_left_to_the_collector_its_code_ends_inside_another_workflows_task() -> None:
    # What dispose prevents (the control for the test above): an instance of an open run
    # merely dropped ends when a collection finds it, inside whatever code runs then.
    with collector_off():
        r = sleeping("evicted")
        del r
        other = runner(CollectsInItsTask)
        commands = other.apply(History().events, task_time=T0)
    assert ENDED == [("wf", False, "started")]  # another run's context
    assert [type(c) for c in commands] == [ScheduleActivity, StartTimer]  # into its task
    ENDED.clear()


def test_disposing_of_twice_is_harmless() -> None:
    r = sleeping("evicted")
    r.dispose()
    r.dispose()
    assert ENDED == [("evicted", True, "refused")]
    ENDED.clear()


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


def test_a_closed_runs_pending_handler_is_ended_and_the_instance_freed() -> None:
    h = History()
    h.add(EventType.WORKFLOW_EXECUTION_SIGNALED, signal_name="start", input=CONV.to_payloads([]))
    with collector_off():
        r = runner(ClosesWithAHandlerPending)
        commands = r.apply(h.events, task_time=T0)
        assert isinstance(commands[0], CompleteWorkflow) and r.closed
        instance = weakref.ref(r.instance)  # type: ignore[arg-type]
        assert FINALLY_RAN == []
        r.dispose()
        assert FINALLY_RAN == ["handler"]
        del r
        assert instance() is None
    FINALLY_RAN.clear()


@workflow.defn(name="W")
class IgnoresItsCancellation:
    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.sleep(1000)
        except BaseException:
            try:
                await workflow.wait_condition(lambda: False)  # waits on, past the cancel
            finally:
                FINALLY_RAN.append("closed")


def test_code_that_waits_past_its_cancellation_is_closed() -> None:
    with collector_off():
        r = runner(IgnoresItsCancellation)
        r.apply(History().events, task_time=T0)
        instance = weakref.ref(r.instance)  # type: ignore[arg-type]
        r.dispose()
        assert FINALLY_RAN == ["closed"]  # its coroutine closed, as a generator is
        del r
        # Its task, pending on the future it awaited last, may wait for a collection: one
        # that finds no code left to run.
        gc.collect()
        assert instance() is None and FINALLY_RAN == ["closed"]
    FINALLY_RAN.clear()
