"""Reset and deletion through the store's interface, on SQLite and PostgreSQL: each is one
transaction, and work of the old run that was in flight is fenced out like any stale work."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from storerows import RUN_TABLES, run_rows, task_refs, timer_seqs

from perdure._common.clock import VirtualClock
from perdure._common.commands import (
    RequestCancelActivity,
    ScheduleActivity,
    StartTimer,
    UpsertMemo,
    UpsertSearchAttributes,
)
from perdure._common.events import EventType
from perdure._errors import WorkflowNotFoundError
from perdure._store import Store, open_store
from perdure._store._types import (
    ResetRequest,
    StaleTaskError,
    StartWorkflowRequest,
    TaskToken,
    UpdateState,
    WorkflowTask,
)
from perdure.common import RetryPolicy
from perdure.common._enums import ResetType
from perdure.converter import DataConverter

CONV = DataConverter.default.payload_converter


async def start(store: Store, workflow_id: str = "wf") -> str:
    req = StartWorkflowRequest(
        namespace="default",
        workflow_id=workflow_id,
        workflow_type="W",
        task_queue="q",
        input=[],
        run_id=str(uuid.uuid4()),
        search_attributes={"Stage": {"type": "Keyword", "values": ["one"]}},
    )
    return (await store.start_workflow(req)).run_id


async def claim_one(store: Store, owner: str = "w") -> WorkflowTask:
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
        start_to_close_timeout=60.0,
        heartbeat_timeout=None,
        retry_policy=RetryPolicy(maximum_attempts=2).to_dict(),
        cancellation_type=0,
    )


async def signal(store: Store, value: int) -> None:
    await store.signal("default", "wf", None, "sig", [CONV.to_payload(value)], "client")


def reset(reason: str = "test", event_id: int | None = None) -> ResetRequest:
    return ResetRequest("default", "wf", None, reason, event_id=event_id)


async def types(store: Store, run_id: str) -> list[str]:
    return [e.event_type.value for e in await store.get_history(run_id)]


async def signal_values(store: Store, run_id: str) -> list[int]:
    return [
        CONV.from_payload(e.attributes["input"][0], int)
        for e in await store.get_history(run_id)
        if e.event_type is EventType.WORKFLOW_EXECUTION_SIGNALED
    ]


async def test_a_late_activity_result_of_the_old_run_is_refused(
    store: Store, clock: VirtualClock
) -> None:
    old_run = await start(store)
    task = await claim_one(store)
    await store.complete_workflow_task(task, [schedule(1), StartTimer(1, 5.0)], "w")
    await signal(store, 1)  # a second task, after the activity and timer started
    second = await claim_one(store)
    await store.complete_workflow_task(second, [schedule(2), StartTimer(2, 120.0)], "w")
    leased = await store.claim_activity_tasks("default", "q", "w", 10)
    assert [a.token.seq for a in leased] == [1, 2]

    new_run = await store.reset_workflow(reset())

    for act in leased:
        with pytest.raises(StaleTaskError):
            await store.complete_activity(act.token, "w", CONV.to_payload("late"), "w")
    # Nothing was appended after the old run's WorkflowExecutionTerminated (event 9).
    assert (await store.describe("default", "wf", old_run)).next_event_id == 10
    old_rows = await run_rows(store, old_run)
    assert (old_rows["tasks"], old_rows["timers"], old_rows["inbox"]) == (0, 0, 0)
    # The activity and timer started before the reset point are made again for the new run,
    # with the times they had; the second task's will be when that task runs again.
    assert await task_refs(store, new_run, kind=2) == [1]
    assert await timer_seqs(store, new_run) == [1]
    assert await types(store, new_run) == [
        "WorkflowExecutionStarted",
        "WorkflowTaskCompleted",
        "ActivityTaskScheduled",
        "TimerStarted",
        "WorkflowExecutionSignaled",
        "WorkflowTaskFailed",
    ]
    redo = await claim_one(store)
    assert (redo.run_id, redo.next_event_id) == (new_run, 7)
    activity = (await store.claim_activity_tasks("default", "q", "w", 10))[0]
    assert (activity.token.run_id, activity.token.seq, activity.attempt) == (new_run, 1, 1)
    clock.advance_to(clock.now() + 6)
    assert await store.fire_due() == 1  # the carried timer fires in the new run
    assert await timer_seqs(store, new_run) == []
    new = await store.describe("default", "wf", new_run)
    assert new.search_attributes == {"Stage": {"type": "Keyword", "values": ["one"]}}


async def test_a_workflow_task_in_flight_at_the_reset_cannot_complete(store: Store) -> None:
    old_run = await start(store)
    await store.complete_workflow_task(await claim_one(store), [], "w")
    await signal(store, 1)
    in_flight = await claim_one(store)
    await signal(store, 2)  # buffered in the inbox while the task runs

    new_run = await store.reset_workflow(reset(event_id=2))

    with pytest.raises(StaleTaskError):
        await store.complete_workflow_task(in_flight, [schedule(1)], "w")
    with pytest.raises(StaleTaskError):
        await store.fail_workflow_task(in_flight, {"message": "boom"}, "w")
    # The buffered signal reached the old run's history as it ended, and the new run once.
    assert await signal_values(store, old_run) == [1, 2]
    assert await signal_values(store, new_run) == [1, 2]
    assert await types(store, new_run) == [
        "WorkflowExecutionStarted",
        "WorkflowTaskFailed",
        "WorkflowExecutionSignaled",
        "WorkflowExecutionSignaled",
    ]
    old = await store.describe("default", "wf", old_run)
    assert old.close_event is not None
    assert old.close_event["attributes"]["new_run_id"] == new_run
    assert old.reset_points is not None and old.reset_points["to"]["new_run_id"] == new_run


async def test_an_activity_being_cancelled_at_the_reset_point_is_cancelled_in_the_new_run(
    store: Store,
) -> None:
    await start(store)
    await store.complete_workflow_task(await claim_one(store), [schedule(1)], "w")
    await store.claim_activity_tasks("default", "q", "w", 10)  # running: cancelling waits for it
    await signal(store, 1)
    await store.complete_workflow_task(await claim_one(store), [RequestCancelActivity(1)], "w")
    await signal(store, 2)
    await store.complete_workflow_task(await claim_one(store), [], "w")

    new_run = await store.reset_workflow(reset())

    assert (await types(store, new_run))[-2:] == ["WorkflowTaskFailed", "ActivityTaskCanceled"]
    assert await task_refs(store, new_run, kind=2) == []


async def test_the_new_run_has_the_memo_search_attributes_and_cancel_request_of_the_point(
    store: Store,
) -> None:
    await start(store)
    stage = {"Stage": {"type": "Keyword", "values": ["two"]}}
    first = [UpsertMemo({"stage": CONV.to_payload(1)}), UpsertSearchAttributes(stage)]
    await store.complete_workflow_task(await claim_one(store), first, "w")
    await store.request_cancel("default", "wf", None, "stop", "client")
    later = [
        UpsertMemo({"stage": CONV.to_payload(2)}),
        UpsertSearchAttributes({"Stage": None}),
    ]
    await store.complete_workflow_task(await claim_one(store), later, "w")

    new_run = await store.reset_workflow(reset())  # to the second task: its upserts are undone

    new = await store.describe("default", "wf", new_run)
    assert new.memo is not None and CONV.from_payload(new.memo["stage"], int) == 1
    assert new.search_attributes == stage
    assert new.cancel_requested
    assert (await store.list_workflows("default", "Stage = 'two'", 10)).executions == [new]


async def test_updates_the_old_run_had_not_seen_go_to_the_new_run(store: Store) -> None:
    old_run = await start(store)
    await store.complete_workflow_task(await claim_one(store), [], "w")
    await store.request_update("default", "wf", None, "u1", "upd", [])
    new_run = await store.reset_workflow(reset())
    assert await store.get_update(old_run, "u1") is None
    moved = await store.get_update(new_run, "u1")
    assert moved is not None and moved.state == UpdateState.REQUESTED
    task = await claim_one(store)
    assert task.run_id == new_run and task.updates_requested


async def test_a_reset_racing_completions_from_another_process_is_fenced(
    postgres_url: str, clock: VirtualClock
) -> None:
    a, b = open_store(postgres_url, clock), open_store(postgres_url, clock)
    try:
        # Any of the three may come first (and they may deadlock, which PostgreSQL breaks and
        # the store retries): whatever the order, a completion is either recorded in the old
        # run before it ends or refused, and nothing of the old run's is left.
        for i in range(5):
            workflow_id = f"race-{i}"
            old_run = await start(a, workflow_id)
            await a.complete_workflow_task(await claim_one(a), [schedule(1)], "w")
            await signal_to(a, workflow_id)
            await a.complete_workflow_task(await claim_one(a), [], "w")
            token = (await a.claim_activity_tasks("default", "q", "w", 1))[0].token
            await signal_to(a, workflow_id)
            in_flight = await claim_one(a)
            activity, task, new_run = await asyncio.gather(
                a.complete_activity(token, "w", CONV.to_payload("done"), "w"),
                a.complete_workflow_task(in_flight, [StartTimer(1, 60.0)], "w"),
                b.reset_workflow(ResetRequest("default", workflow_id, None, "race")),
                return_exceptions=True,
            )
            assert isinstance(new_run, str)
            history = await types(a, old_run)
            end = history.index("WorkflowExecutionTerminated")
            for outcome, event in ((activity, "ActivityTaskCompleted"), (task, "TimerStarted")):
                if isinstance(outcome, BaseException):
                    assert isinstance(outcome, StaleTaskError)  # the reset came first
                    assert event not in history
                else:
                    assert history.index(event) < end  # recorded, then the run ended
            # The activity was scheduled before any reset point, and finished after it.
            assert await task_refs(a, new_run, kind=2) == [1]
            old_rows = await run_rows(a, old_run)
            assert (old_rows["tasks"], old_rows["timers"], old_rows["inbox"]) == (0, 0, 0)
            await a.delete_workflow("default", workflow_id, None, "test")
    finally:
        await a.close()
        await b.close()


async def signal_to(store: Store, workflow_id: str) -> None:
    await store.signal("default", workflow_id, None, "sig", [CONV.to_payload(0)], "client")


async def test_delete_removes_a_run_and_all_it_owns_in_one_go(store: Store) -> None:
    run_id = await start(store)
    task = await claim_one(store)
    await store.complete_workflow_task(task, [schedule(1), StartTimer(1, 60.0)], "w")
    await signal(store, 1)
    await claim_one(store)  # in flight as the run is deleted
    await signal(store, 2)  # in the inbox
    await store.signal("default", "wf", None, "sig", [], "client", request_id="k")  # keyed
    await store.request_update("default", "wf", None, "u1", "upd", [])
    ex = await store.describe("default", "wf", None)
    await store.insert_query(ex, "q", [])
    kept = await start(store, "other")
    await store.signal("default", "other", None, "sig", [], "client", request_id="k")
    assert await run_rows(store, run_id) == {
        "executions": 1,
        "history": 5,
        "inbox": 2,
        "tasks": 3,  # the workflow task, the activity, the query
        "timers": 1,
        "search_attributes": 1,
        "updates": 1,
        "signal_requests": 1,
    }

    assert await store.delete_workflow("default", "wf", None, "test") == run_id

    assert await run_rows(store, run_id) == dict.fromkeys(RUN_TABLES, 0)
    with pytest.raises(WorkflowNotFoundError):
        await store.describe("default", "wf", run_id)
    with pytest.raises(WorkflowNotFoundError):
        await store.delete_workflow("default", "wf", None, "test")
    assert (await run_rows(store, kept))["executions"] == 1
    assert (await run_rows(store, kept))["signal_requests"] == 1  # the same key, another id


async def test_an_activity_of_a_deleted_run_cannot_complete(store: Store) -> None:
    await start(store)
    await store.complete_workflow_task(await claim_one(store), [schedule(1)], "w")
    token: TaskToken = (await store.claim_activity_tasks("default", "q", "w", 1))[0].token
    await store.delete_workflow("default", "wf", None, "test")
    with pytest.raises(StaleTaskError):
        await store.complete_activity(token, "w", CONV.to_payload(1), "w")


def test_reset_types_are_temporal_cli_s() -> None:
    assert [t.name for t in ResetType] == [
        "FIRST_WORKFLOW_TASK",
        "LAST_WORKFLOW_TASK",
        "LAST_CONTINUED_AS_NEW",
    ]
