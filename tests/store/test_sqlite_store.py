"""The store's rules through its interface: fencing, leases, the inbox, group commit."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import pytest

from perdure._common.clock import VirtualClock
from perdure._common.commands import CompleteWorkflow, ScheduleActivity, StartTimer
from perdure._common.events import EventType
from perdure._common.payload import Payload
from perdure._errors import SchemaVersionError, WorkflowAlreadyStartedError
from perdure._store import Store, open_store
from perdure._store._types import StaleTaskError, StartWorkflowRequest, WorkflowTask
from perdure.common import RetryPolicy
from perdure.converter import DataConverter

CONV = DataConverter.default.payload_converter


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(1_000_000.0)


@pytest.fixture
async def store(clock: VirtualClock, tmp_path: Path) -> Store:
    s = open_store(f"sqlite:///{tmp_path / 'store.db'}", clock)
    yield s  # type: ignore[misc]
    await s.close()


async def start(store: Store, workflow_id: str = "wf", task_timeout: float = 10.0) -> str:
    result = await store.start_workflow(
        StartWorkflowRequest(
            namespace="default",
            workflow_id=workflow_id,
            workflow_type="W",
            task_queue="q",
            input=[],
            run_id=str(uuid.uuid4()),
            randomness_seed=1,
            task_timeout=task_timeout,
        )
    )
    return result.run_id


async def claim_one(store: Store, owner: str) -> WorkflowTask:
    tasks = await store.claim_workflow_tasks("default", "q", owner, 10)
    assert len(tasks) == 1
    return tasks[0]


def schedule(seq: int) -> ScheduleActivity:
    return ScheduleActivity(
        seq=seq,
        activity_id=str(seq),
        activity_type="act",
        task_queue="q",
        input=[],
        schedule_to_close_timeout=None,
        schedule_to_start_timeout=None,
        start_to_close_timeout=5.0,
        heartbeat_timeout=None,
        retry_policy=RetryPolicy(maximum_attempts=2).to_dict(),
        cancellation_type=0,
    )


async def event_types(store: Store, run_id: str) -> list[str]:
    return [e.event_type.value for e in await store.get_history(run_id)]


async def test_a_task_is_claimed_once(store: Store) -> None:
    await start(store)
    await claim_one(store, "a")
    assert await store.claim_workflow_tasks("default", "q", "b", 10) == []


async def test_expired_lease_lets_another_worker_take_over_and_fences_the_first(
    store: Store, clock: VirtualClock
) -> None:
    run_id = await start(store, task_timeout=5)
    stale = await claim_one(store, "a")
    clock.advance_to(clock.now() + 6)
    assert await store.fire_due() == 1
    fresh = await claim_one(store, "b")
    assert fresh.attempt == 2
    with pytest.raises(StaleTaskError):
        await store.complete_workflow_task(stale, [schedule(1)], "a")
    assert await store.complete_workflow_task(fresh, [schedule(1)], "b") == 4
    assert await event_types(store, run_id) == [
        "WorkflowExecutionStarted",
        "WorkflowTaskCompleted",
        "ActivityTaskScheduled",
    ]
    ex = await store.describe("default", "wf", None)
    assert ex.last_failure is None and ex.wft_attempt == 0


async def test_signals_during_a_task_are_buffered_after_its_commands(store: Store) -> None:
    run_id = await start(store)
    task = await claim_one(store, "a")
    await store.signal("default", "wf", None, "sig", [CONV.to_payload(1)], "client")
    assert await event_types(store, run_id) == ["WorkflowExecutionStarted"]
    await store.complete_workflow_task(task, [StartTimer(1, 60.0)], "a")
    assert await event_types(store, run_id) == [
        "WorkflowExecutionStarted",
        "WorkflowTaskCompleted",
        "TimerStarted",
        "WorkflowExecutionSignaled",
    ]
    # The buffered signal needs handling: a new workflow task is pending.
    await claim_one(store, "a")


async def test_a_workflow_cannot_close_over_a_signal_it_has_not_seen(store: Store) -> None:
    run_id = await start(store)
    task = await claim_one(store, "a")
    await store.signal("default", "wf", None, "sig", [], "client")
    done = CompleteWorkflow(CONV.to_payload("result"))
    assert await store.complete_workflow_task(task, [done], "a") is None
    assert await event_types(store, run_id) == [
        "WorkflowExecutionStarted",
        "WorkflowExecutionSignaled",
    ]
    retry = await claim_one(store, "a")
    assert await store.complete_workflow_task(retry, [done], "a") is not None
    ex = await store.describe("default", "wf", None)
    assert not ex.is_open and ex.close_event is not None


async def test_timer_fires_once_at_its_time(store: Store, clock: VirtualClock) -> None:
    run_id = await start(store)
    task = await claim_one(store, "a")
    await store.complete_workflow_task(task, [StartTimer(1, 60.0)], "a")
    assert await store.fire_due() == 0
    assert await store.next_wakeup() == pytest.approx(task.started_time + 60)
    clock.advance_to(task.started_time + 60)
    assert await store.fire_due() == 1
    assert await store.fire_due() == 0
    assert (await event_types(store, run_id))[-1] == "TimerFired"


async def test_stale_activity_attempt_is_refused(store: Store, clock: VirtualClock) -> None:
    run_id = await start(store)
    task = await claim_one(store, "a")
    await store.complete_workflow_task(task, [schedule(1)], "a")
    [first] = await store.claim_activity_tasks("default", "q", "a", 10)
    clock.advance_to(clock.now() + 6)  # start_to_close (5 s) passes: attempt 2 follows
    await store.fire_due()
    clock.advance_to(clock.now() + 2)
    [second] = await store.claim_activity_tasks("default", "q", "b", 10)
    assert second.attempt == 2
    with pytest.raises(StaleTaskError):
        await store.complete_activity(first.token, first.owner, CONV.to_payload("late"), "a")
    await store.complete_activity(second.token, second.owner, CONV.to_payload("ok"), "b")
    history = await store.get_history(run_id)
    completed = [e for e in history if e.event_type is EventType.ACTIVITY_TASK_COMPLETED]
    assert len(completed) == 1
    assert CONV.from_payload(completed[0].attributes["result"]) == "ok"
    started = [e for e in history if e.event_type is EventType.ACTIVITY_TASK_STARTED]
    assert [e.attributes["attempt"] for e in started] == [2]


async def test_one_failing_operation_does_not_undo_its_batch(store: Store) -> None:
    await start(store, "taken")
    results = await asyncio.gather(
        start(store, "taken"), start(store, "fresh"), return_exceptions=True
    )
    assert isinstance(results[0], WorkflowAlreadyStartedError)
    assert isinstance(results[1], str)
    assert (await store.describe("default", "fresh", None)).is_open


async def test_a_database_from_a_newer_perdure_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    await open_store(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE perdure_schema SET version = version + 1")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match="upgrade perdure"):
        open_store(f"sqlite:///{path}")


async def test_payload_round_trip_through_the_store(store: Store) -> None:
    run_id = await start(store)
    task = await claim_one(store, "a")
    payload = Payload(metadata={"encoding": b"binary/plain"}, data=bytes(range(256)))
    await store.complete_workflow_task(task, [CompleteWorkflow(payload)], "a")
    history = await store.get_history(run_id)
    assert history[-1].attributes["result"] == payload
