"""Eager dispatch in the store, on SQLite and PostgreSQL alike: a task leased in the same
transaction that creates it is held exactly as a claimed one (nobody else can claim it, its
lease runs out and fences its holder), and an offer that does not fit is left alone."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from storerows import start_request

from perdure._common.clock import VirtualClock
from perdure._common.commands import ScheduleActivity
from perdure._common.events import EventType
from perdure._errors import WorkflowAlreadyStartedError
from perdure._store import Store
from perdure._store._eager import ActivityOffer, EagerWorkflowTask, WorkflowTaskOffer
from perdure._store._types import StaleTaskError, StartWorkflowRequest, WorkflowTask
from perdure.common import RetryPolicy
from perdure.converter import DataConverter

CONV = DataConverter.default.payload_converter


def request(workflow_id: str = "wf", *, delay: float = 0.0) -> StartWorkflowRequest:
    return start_request(workflow_id, start_delay=delay)


def schedule(seq: int, activity_type: str = "act", task_queue: str = "q") -> ScheduleActivity:
    return ScheduleActivity(
        seq=seq,
        activity_id=str(seq),
        activity_type=activity_type,
        task_queue=task_queue,
        input=[CONV.to_payload(seq)],
        schedule_to_close_timeout=None,
        schedule_to_start_timeout=None,
        start_to_close_timeout=5.0,
        heartbeat_timeout=None,
        retry_policy=RetryPolicy(maximum_attempts=3).to_dict(),
        cancellation_type=0,
    )


def take_any(owner: str, then: Continue | None = None) -> WorkflowTaskOffer:
    return WorkflowTaskOffer("default", "q", owner, lambda run_id, workflow_type: True, then)


def acts_offer(limit: int = 1) -> ActivityOffer:
    return ActivityOffer("default", "q", "a", frozenset({"act"}), limit)


async def started_task(store: Store, owner: str = "a") -> WorkflowTask:
    _, handed = await store.start_workflow_eagerly(request(), take_any(owner))
    assert handed.granted is not None
    return handed.granted


async def test_a_start_can_lease_its_first_task_to_the_offering_worker(store: Store) -> None:
    result, handed = await store.start_workflow_eagerly(request(), take_any("a"))
    task = handed.granted
    assert task is not None and task.run_id == result.run_id
    assert (task.owner, task.attempt, task.next_event_id) == ("a", 1, 2)
    assert await store.claim_workflow_tasks("default", "q", "b", 10) == []
    done = await store.complete_workflow_task(task, [schedule(1)], "a")
    assert done.next_event_id == 4


async def test_a_delayed_start_is_not_taken_eagerly(store: Store, clock: VirtualClock) -> None:
    _, handed = await store.start_workflow_eagerly(request(delay=30.0), take_any("a"))
    assert handed.granted is None
    clock.advance_to(clock.now() + 30)
    assert len(await store.claim_workflow_tasks("default", "q", "b", 10)) == 1


async def test_a_start_on_another_queue_or_refused_is_left_to_the_pollers(store: Store) -> None:
    elsewhere = WorkflowTaskOffer("default", "other", "a", lambda run_id, workflow_type: True)
    _, one = await store.start_workflow_eagerly(request("one"), elsewhere)
    refused = WorkflowTaskOffer("default", "q", "a", lambda run_id, workflow_type: False)
    _, two = await store.start_workflow_eagerly(request("two"), refused)
    assert one.granted is None and two.granted is None
    assert len(await store.claim_workflow_tasks("default", "q", "b", 10)) == 2


class Ticket:
    """A registered owner's reservation, as a worker's eager dispatch makes it: it learns
    what the start's transaction handed over (None: it did not commit)."""

    def __init__(self, offer: WorkflowTaskOffer) -> None:
        self.offer = offer
        self.settled: list[EagerWorkflowTask | None] = []

    async def settle(self, handed: EagerWorkflowTask | None) -> None:
        self.settled.append(handed)


class Owner:
    """A worker of this process registered for its queue, taking starts of type W only."""

    def __init__(self) -> None:
        self.tickets: list[Ticket] = []

    def offer_start(self, workflow_type: str) -> Ticket | None:
        if workflow_type != "W":
            return None
        self.tickets.append(Ticket(take_any("a")))
        return self.tickets[-1]

    def offer_fired(self) -> None:
        return None  # timers firing: see test_eager_timers.py


async def test_a_start_asks_the_registered_owner_of_its_queue(store: Store) -> None:
    owner = Owner()
    store.register_eager("default", "q", owner)
    result = await store.start_workflow(request("one"))
    [ticket] = owner.tickets
    [handed] = ticket.settled
    assert handed is not None and handed.granted is not None
    assert handed.granted.run_id == result.run_id
    # A delayed start is not offered; nor is one once the owner unregistered.
    await store.start_workflow(request("two", delay=5.0))
    store.unregister_eager("default", "q", owner)
    await store.start_workflow(request("three"))
    assert len(owner.tickets) == 1


async def test_a_start_that_fails_settles_its_ticket_with_nothing(store: Store) -> None:
    owner = Owner()
    store.register_eager("default", "q", owner)
    await store.start_workflow(request("one"))
    with pytest.raises(WorkflowAlreadyStartedError):
        await store.start_workflow(dataclasses.replace(request("one"), run_id="other"))
    assert [t.settled for t in owner.tickets][1] == [None]


async def test_activities_on_the_workers_queue_are_leased_to_it_up_to_its_limit(
    store: Store,
) -> None:
    task = await started_task(store)
    commands = [schedule(1), schedule(2, "unregistered"), schedule(3, task_queue="other")]
    commands += [schedule(4), schedule(5)]
    done = await store.complete_workflow_task(task, commands, "a", acts_offer(limit=2))
    assert done.activities is not None
    granted = done.activities.granted
    assert [(t.token.seq, t.owner, t.attempt) for t in granted] == [(1, "a", 1), (4, "a", 1)]
    assert CONV.from_payload(granted[0].input[0]) == 1
    # The rest wait for pollers as usual: the unregistered type and seq 5 here, seq 3 there.
    left = await store.claim_activity_tasks("default", "q", "b", 10)
    assert sorted(t.token.seq for t in left) == [2, 5]
    assert [t.token.seq for t in await store.claim_activity_tasks("default", "other", "b", 10)] == [
        3
    ]


async def test_an_eager_activity_lease_runs_out_like_a_claimed_one(
    store: Store, clock: VirtualClock
) -> None:
    task = await started_task(store)
    done = await store.complete_workflow_task(task, [schedule(1)], "a", acts_offer())
    assert done.activities is not None
    [held] = done.activities.granted
    clock.advance_to(clock.now() + 6)  # start-to-close (5 s): the holder is presumed dead
    await store.fire_due()
    clock.advance_to(clock.now() + 2)  # the retry's backoff
    [retry] = await store.claim_activity_tasks("default", "q", "b", 10)
    assert retry.attempt == 2
    with pytest.raises(StaleTaskError):
        await store.complete_activity(held.token, held.owner, CONV.to_payload("late"), "a")
    await store.complete_activity(retry.token, retry.owner, CONV.to_payload("ok"), "b")
    history = await store.get_history(task.run_id)
    done = [e for e in history if e.event_type is EventType.ACTIVITY_TASK_COMPLETED]
    assert [CONV.from_payload(e.attributes["result"]) for e in done] == ["ok"]


async def test_an_activity_outcome_hands_the_next_workflow_task_to_a_worker_holding_the_run(
    store: Store,
) -> None:
    task = await started_task(store)
    done = await store.complete_workflow_task(task, [schedule(1)], "a", acts_offer())
    assert done.activities is not None
    [act] = done.activities.granted
    handed = await store.complete_activity(
        act.token, act.owner, CONV.to_payload("r"), "a", cached(task)
    )
    nxt = None if handed is None else handed.granted
    assert nxt is not None and nxt.owner == "a" and nxt.next_event_id == 6
    assert await store.claim_workflow_tasks("default", "q", "b", 10) == []
    # Inputs that arrive while it is held are buffered, as for a claimed task.
    await store.signal("default", "wf", None, "sig", [], "client")
    assert (await store.complete_workflow_task(nxt, [], "a")).next_event_id == 7
    history = [e.event_type.value for e in await store.get_history(task.run_id)]
    assert history[-3:] == [
        "ActivityTaskCompleted",
        "WorkflowTaskCompleted",
        "WorkflowExecutionSignaled",
    ]


async def test_an_offer_from_a_failed_operation_grants_nothing(store: Store) -> None:
    task = await started_task(store)
    await store.complete_workflow_task(task, [], "a")
    with pytest.raises(StaleTaskError):
        await store.complete_workflow_task(task, [schedule(1)], "a", acts_offer())


class Continue:
    """A worker's InCommit: the next task schedules activity 2, once."""

    identity = "a"

    def __init__(self, offer: ActivityOffer | None = None) -> None:
        self.offer = offer
        self.calls = 0

    def __call__(
        self, task: WorkflowTask
    ) -> tuple[list[ScheduleActivity], ActivityOffer | None] | None:
        self.calls += 1
        return ([schedule(2)], self.offer) if self.calls == 1 else None


async def running_activity(store: Store) -> tuple[WorkflowTask, Any]:
    task = await started_task(store)
    done = await store.complete_workflow_task(task, [schedule(1)], "a", acts_offer())
    assert done.activities is not None
    return task, done.activities.granted[0]


def cached(task: WorkflowTask, then: Continue | None = None) -> WorkflowTaskOffer:
    return WorkflowTaskOffer("default", "q", "a", lambda run_id, _: run_id == task.run_id, then)


async def test_the_next_workflow_task_can_be_recorded_in_the_commit_of_an_activity_result(
    store: Store,
) -> None:
    task, act = await running_activity(store)
    then = Continue(acts_offer())
    handed = await store.complete_activity(
        act.token, act.owner, CONV.to_payload("r"), "a", cached(task, then)
    )
    assert handed is not None and handed.continued == 8 and then.calls == 1
    history = [e.event_type.value for e in await store.get_history(task.run_id)]
    assert history[3:] == [
        "ActivityTaskStarted",
        "ActivityTaskCompleted",
        "WorkflowTaskCompleted",
        "ActivityTaskScheduled",
    ]
    assert handed.activities is not None
    assert [t.token.seq for t in handed.activities.granted] == [2]
    assert await store.claim_workflow_tasks("default", "q", "b", 10) == []
    assert await store.claim_activity_tasks("default", "q", "b", 10) == []


async def test_a_workflow_task_run_in_an_undone_commit_is_left_to_run_again(
    store: Store,
) -> None:
    from perdure._store import _starts as starts
    from perdure._store._effects import Effects
    from perdure._store._tx import Tx

    task, act = await running_activity(store)

    async def write_then_fail(tx: Tx, fx: Effects) -> None:
        await starts.start_workflow(tx, request("other"), store.clock.now(), fx)
        raise RuntimeError("fails after writing")

    then = Continue(acts_offer())
    handed, failed = await asyncio.gather(
        store.complete_activity(
            act.token, act.owner, CONV.to_payload("r"), "a", cached(task, then)
        ),
        store.transact(write_then_fail),
        return_exceptions=True,
    )
    # The batch ran again, one savepoint each, to undo only the failed operation: the second
    # run of the outcome did not run the workflow task, which was leased to the worker only;
    # what it returns is the second run's grant, with nothing of the first's.
    assert isinstance(failed, RuntimeError)
    assert isinstance(handed, EagerWorkflowTask)
    assert then.calls == 2 and handed.continued is None and handed.activities is None
    assert handed.granted is not None and handed.granted.next_event_id == 6
    history = [e.event_type.value for e in await store.get_history(task.run_id)]
    assert history[-1] == "ActivityTaskCompleted"
    assert await store.claim_workflow_tasks("default", "q", "b", 10) == []
    done = await store.complete_workflow_task(handed.granted, [schedule(2)], "a")
    assert done.next_event_id == 8


async def test_a_start_can_have_its_first_task_run_and_recorded_in_its_commit(
    store: Store,
) -> None:
    then = Continue()
    then.identity = "worker-a"
    result, handed = await store.start_workflow_eagerly(request(), take_any("a", then))
    assert handed.continued == 4 and then.calls == 1
    history = await store.get_history(result.run_id)
    assert [e.event_type.value for e in history] == [
        "WorkflowExecutionStarted",
        "WorkflowTaskCompleted",
        "ActivityTaskScheduled",
    ]
    assert history[1].attributes["identity"] == "worker-a"
    assert await store.claim_workflow_tasks("default", "q", "b", 10) == []
    assert len(await store.claim_activity_tasks("default", "q", "b", 10)) == 1
