"""The runtime alone: synthetic histories in, commands out. No database, no worker."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from typing import Any

import pytest

from perdure import workflow
from perdure._common.commands import (
    CancelTimer,
    CancelWorkflow,
    CompleteWorkflow,
    FailWorkflow,
    RequestCancelActivity,
    ScheduleActivity,
    StartTimer,
)
from perdure._common.events import EventType, HistoryEvent
from perdure._errors import NondeterminismError, RestrictedWorkflowAccessError
from perdure._runtime import QueryFailed, WorkflowRunner, WorkflowTaskFailure
from perdure.converter import DataConverter
from perdure.exceptions import ActivityError, ApplicationError
from perdure.workflow._definition import WorkflowDefinition

CONV = DataConverter.default.payload_converter
T0 = 1_700_000_000.0


class History:
    """Builds a history the way the store would write it."""

    def __init__(self, *args: Any, workflow_type: str = "W") -> None:
        self.events: list[HistoryEvent] = []
        self.add(
            EventType.WORKFLOW_EXECUTION_STARTED,
            workflow_type=workflow_type,
            task_queue="q",
            input=CONV.to_payloads(list(args)),
            randomness_seed=42,
        )

    def add(self, event_type: EventType, **attrs: Any) -> HistoryEvent:
        event = HistoryEvent(len(self.events) + 1, event_type, T0, attrs)
        self.events.append(event)
        return event

    def task_completed(self, time: float = T0) -> None:
        self.add(EventType.WORKFLOW_TASK_COMPLETED, time=time, identity="test")

    def record(self, commands: list[Any]) -> None:
        for c in commands:
            self.add(c.event_type, **c.attributes())

    def activity_completed(self, seq: int, result: Any) -> None:
        self.add(
            EventType.ACTIVITY_TASK_COMPLETED,
            seq=seq,
            scheduled_event_id=0,
            result=CONV.to_payload(result),
        )


def runner(cls: type) -> WorkflowRunner:
    return WorkflowRunner(WorkflowDefinition.from_class(cls), workflow_id="wf", run_id="run")


def activity_types(commands: list[Any]) -> list[str]:
    return [c.activity_type for c in commands if isinstance(c, ScheduleActivity)]


@workflow.defn(name="W")
class TwoSteps:
    @workflow.run
    async def run(self, name: str) -> str:
        a = await workflow.execute_activity(
            "greet", name, start_to_close_timeout=timedelta(seconds=5)
        )
        b = await workflow.execute_activity("shout", a, start_to_close_timeout=timedelta(seconds=5))
        return str(b)


def test_first_task_schedules_the_first_activity() -> None:
    h = History("ada")
    commands = runner(TwoSteps).apply(h.events, task_time=T0)
    assert len(commands) == 1
    command = commands[0]
    assert isinstance(command, ScheduleActivity)
    assert (command.seq, command.activity_type, command.task_queue) == (1, "greet", "q")
    assert CONV.from_payloads(command.input) == ["ada"]
    assert command.start_to_close_timeout == 5.0


def test_full_replay_reaches_the_same_state_as_the_cached_instance() -> None:
    h = History("ada")
    cached = runner(TwoSteps)
    first = cached.apply(h.events, task_time=T0)
    h.task_completed()
    h.record(first)
    cached.recorded(len(h.events) + 1)
    h.activity_completed(1, "hi ada")
    second = cached.apply(h.events[-1:], task_time=T0 + 1)
    assert activity_types(second) == ["shout"]

    fresh = runner(TwoSteps)
    assert activity_types(fresh.apply(h.events, task_time=T0 + 1)) == ["shout"]

    h.task_completed(T0 + 1)
    h.record(second)
    h.activity_completed(2, "HI ADA")
    final = runner(TwoSteps).apply(h.events, task_time=T0 + 2)
    assert len(final) == 1 and isinstance(final[0], CompleteWorkflow)
    assert CONV.from_payload(final[0].result) == "HI ADA"


@workflow.defn(name="W")
class TwoStepsChanged:
    @workflow.run
    async def run(self, name: str) -> str:
        return str(
            await workflow.execute_activity(
                "wave", name, start_to_close_timeout=timedelta(seconds=5)
            )
        )


def test_changed_code_raises_nondeterminism_naming_event_and_command() -> None:
    h = History("ada")
    h.task_completed()
    h.record(runner(TwoSteps).apply(h.events[:1], task_time=T0))
    h.activity_completed(1, "hi")
    with pytest.raises(WorkflowTaskFailure) as info:
        runner(TwoStepsChanged).apply(h.events, task_time=T0 + 1)
    error = info.value.cause
    assert isinstance(error, NondeterminismError)
    assert "History event 3 (ActivityTaskScheduled" in str(error)
    assert "'greet'" in str(error) and "'wave'" in str(error)


@workflow.defn(name="W")
class NoActivities:
    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.sleep(10)
        return name


def test_a_command_missing_from_the_code_is_nondeterminism() -> None:
    h = History("ada")
    h.task_completed()
    h.record(runner(TwoSteps).apply(h.events[:1], task_time=T0))
    h.activity_completed(1, "hi")
    with pytest.raises(WorkflowTaskFailure) as info:
        runner(NoActivities).apply(h.events, task_time=T0 + 1)
    assert isinstance(info.value.cause, NondeterminismError)
    assert "event 3" in str(info.value.cause)


def test_timer_then_completion_uses_the_recorded_task_time() -> None:
    h = History("ada")
    commands = runner(NoActivities).apply(h.events, task_time=T0)
    assert commands == [StartTimer(seq=1, duration=10.0)]
    h.task_completed(T0)
    h.record(commands)
    h.add(EventType.TIMER_FIRED, seq=1, started_event_id=3)
    final = runner(NoActivities).apply(h.events, task_time=T0 + 10)
    assert isinstance(final[0], CompleteWorkflow)


@workflow.defn(name="W")
class Clock:
    @workflow.run
    async def run(self) -> list[Any]:
        before = workflow.now()
        await workflow.sleep(timedelta(hours=1))
        after = workflow.now()
        return [
            before.timestamp(),
            after.timestamp(),
            workflow.random().random(),
            str(workflow.uuid4()),
        ]


def test_now_random_and_uuid_are_replay_safe() -> None:
    h = History()
    first = runner(Clock).apply(h.events, task_time=T0)
    h.task_completed(T0)
    h.record(first)
    h.add(EventType.TIMER_FIRED, seq=1, started_event_id=3)
    a = runner(Clock).apply(h.events, task_time=T0 + 3600)
    b = runner(Clock).apply(h.events, task_time=T0 + 3600)
    result_a = CONV.from_payload(a[0].result)  # type: ignore[union-attr]
    assert result_a == CONV.from_payload(b[0].result)  # type: ignore[union-attr]
    assert result_a[0] == T0 and result_a[1] == T0 + 3600
    # The generator is the run's, seeded from its start event (42), wherever it is first
    # asked for: here in the second task, of a full replay and of the cached instance.
    seeded = random.Random(42)
    assert result_a[2:] == [seeded.random(), str(uuid.UUID(int=seeded.getrandbits(128), version=4))]
    cached = runner(Clock)
    cached.apply(h.events[:-1], task_time=T0)
    cached.recorded(len(h.events))
    c = cached.apply(h.events[-1:], task_time=T0 + 3600)
    assert CONV.from_payload(c[0].result) == result_a  # type: ignore[union-attr]


@workflow.defn(name="W")
class Signals:
    def __init__(self) -> None:
        self.items: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: "done" in self.items)
        return self.items

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.query
    def count(self) -> int:
        return len(self.items)


def signal(h: History, name: str, *args: Any) -> None:
    h.add(
        EventType.WORKFLOW_EXECUTION_SIGNALED, signal_name=name, input=CONV.to_payloads(list(args))
    )


def test_signals_are_applied_in_history_order_and_queries_read_state() -> None:
    h = History()
    r = runner(Signals)
    assert r.apply(h.events, task_time=T0) == []
    h.task_completed()
    for item in ["a", "b"]:
        signal(h, "add", item)
    r.recorded(3)
    assert r.apply(h.events[2:], task_time=T0) == []
    assert CONV.from_payload(r.query("count", [])) == 2
    h.task_completed()
    signal(h, "add", "done")
    r.recorded(6)
    final = r.apply(h.events[5:], task_time=T0)
    assert CONV.from_payload(final[0].result) == ["a", "b", "done"]  # type: ignore[union-attr]


def test_unknown_query_fails_only_the_query() -> None:
    r = runner(Signals)
    r.apply(History().events, task_time=T0)
    with pytest.raises(QueryFailed, match=r"no query 'nope'.*count"):
        r.query("nope", [])
    assert CONV.from_payload(r.query("count", [])) == 0


@workflow.defn(name="W")
class LateHandler:
    def __init__(self) -> None:
        self.got: list[int] = []

    @workflow.run
    async def run(self) -> list[int]:
        await workflow.sleep(1)
        workflow.set_signal_handler("late", self.got.append)
        await workflow.wait_condition(lambda: len(self.got) >= 2)
        return self.got


def test_signals_without_handler_are_kept_until_one_is_registered() -> None:
    h = History()
    r = runner(LateHandler)
    first = r.apply(h.events, task_time=T0)
    h.task_completed()
    h.record(first)
    signal(h, "late", 1)
    signal(h, "late", 2)
    h.add(EventType.TIMER_FIRED, seq=1, started_event_id=3)
    final = runner(LateHandler).apply(h.events, task_time=T0 + 1)
    assert CONV.from_payload(final[0].result) == [1, 2]  # type: ignore[union-attr]


@workflow.defn(name="W")
class Failing:
    @workflow.run
    async def run(self, how: str) -> None:
        if how == "app":
            raise ApplicationError("no", "detail", type="Nope", non_retryable=True)
        raise ValueError("bug")


def test_application_error_fails_the_workflow_plain_error_fails_the_task() -> None:
    commands = runner(Failing).apply(History("app").events, task_time=T0)
    assert isinstance(commands[0], FailWorkflow)
    failure = commands[0].failure
    assert (failure["message"], failure["type"], failure["non_retryable"]) == ("no", "Nope", True)
    with pytest.raises(WorkflowTaskFailure) as info:
        runner(Failing).apply(History("plain").events, task_time=T0)
    assert isinstance(info.value.cause, ValueError)


@workflow.defn(name="W")
class Cheater:
    @workflow.run
    async def run(self) -> float:
        import time

        return time.time()


def test_non_deterministic_calls_fail_the_task_with_the_alternative() -> None:
    with pytest.raises(WorkflowTaskFailure) as info:
        runner(Cheater).apply(History().events, task_time=T0)
    assert isinstance(info.value.cause, RestrictedWorkflowAccessError)
    assert "workflow.now()" in str(info.value.cause)


@workflow.defn(name="W")
class Parallel:
    @workflow.run
    async def run(self) -> list[Any]:
        opts: dict[str, Any] = {"start_to_close_timeout": timedelta(seconds=1)}
        return list(
            await asyncio.gather(
                workflow.execute_activity("a", 1, **opts),
                workflow.execute_activity("b", 2, **opts),
            )
        )


def test_gather_schedules_in_order_and_results_arrive_in_any_order() -> None:
    h = History()
    first = runner(Parallel).apply(h.events, task_time=T0)
    assert activity_types(first) == ["a", "b"]
    h.task_completed()
    h.record(first)
    h.activity_completed(2, "B")
    h.activity_completed(1, "A")
    final = runner(Parallel).apply(h.events, task_time=T0)
    assert CONV.from_payload(final[0].result) == ["A", "B"]  # type: ignore[union-attr]


@workflow.defn(name="W")
class WaitFor:
    def __init__(self) -> None:
        self.ready = asyncio.Event()

    @workflow.run
    async def run(self) -> str:
        try:
            await asyncio.wait_for(self.ready.wait(), timeout=60)
        except TimeoutError:
            return "timed out"
        return "signalled"

    @workflow.signal
    def go(self) -> None:
        self.ready.set()


def test_wait_for_is_a_durable_timer_cancelled_when_the_event_comes_first() -> None:
    h = History()
    first = runner(WaitFor).apply(h.events, task_time=T0)
    assert first == [StartTimer(seq=1, duration=60.0)]
    h.task_completed()
    h.record(first)
    signal(h, "go")
    second = runner(WaitFor).apply(h.events, task_time=T0 + 5)
    assert second[0] == CancelTimer(seq=1)
    assert CONV.from_payload(second[1].result) == "signalled"  # type: ignore[union-attr]

    h2 = History()
    h2.task_completed()
    h2.record(first)
    h2.add(EventType.TIMER_FIRED, seq=1, started_event_id=3)
    timed_out = runner(WaitFor).apply(h2.events, task_time=T0 + 60)
    assert CONV.from_payload(timed_out[0].result) == "timed out"  # type: ignore[union-attr]


@workflow.defn(name="W")
class Cancellable:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity(
                "slow",
                heartbeat_timeout=timedelta(seconds=1),
                start_to_close_timeout=timedelta(seconds=60),
            )
        except ActivityError:
            await workflow.execute_activity("cleanup", start_to_close_timeout=timedelta(seconds=5))
            raise
        return "done"


def test_cancel_request_cancels_the_activity_and_lets_the_workflow_clean_up() -> None:
    h = History()
    first = runner(Cancellable).apply(h.events, task_time=T0)
    h.task_completed()
    h.record(first)
    h.add(EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED, reason="", identity="")
    second = runner(Cancellable).apply(h.events, task_time=T0)
    assert isinstance(second[0], RequestCancelActivity)
    assert activity_types(second) == ["cleanup"]
    h.task_completed()
    h.record(second)
    h.activity_completed(2, None)
    final = runner(Cancellable).apply(h.events, task_time=T0)
    assert final == [CancelWorkflow()]


@workflow.defn(name="W")
class WaitsForever:
    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: False)
        return "done"


def test_a_cancel_requested_before_the_first_task_reaches_the_workflow() -> None:
    # Cancelled right after the start, before a worker ran it: as in Temporal, the run begins
    # and its first await sees the cancellation (it used to be lost, the run waiting forever).
    h = History()
    h.add(EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED, reason="", identity="")
    assert runner(WaitsForever).apply(h.events, task_time=T0) == [CancelWorkflow()]
    commands = runner(Cancellable).apply(h.events, task_time=T0)
    assert isinstance(commands[-1], ScheduleActivity)
    assert activity_types(commands)[-1] == "cleanup"  # the workflow saw it and cleaned up
