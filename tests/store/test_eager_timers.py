"""Timers firing hand their workflow tasks to the workers of this process, on SQLite and
PostgreSQL alike: the task is leased to the offering worker in the transaction that fires
the timer, with the fired event, up to the worker's free slots; the rest are left to the
pollers, and nothing is granted by a transaction that does not commit."""

from __future__ import annotations

import pytest
from test_eager import request, take_any

from perdure._common.clock import VirtualClock
from perdure._common.commands import StartTimer
from perdure._common.events import EventType
from perdure._store import Store
from perdure._store import _crash as crash
from perdure._store._eager import WorkflowTaskOffer
from perdure._store._types import WorkflowTask


class FiredTicket:
    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.offer = WorkflowTaskOffer("default", owner.task_queue, "a", self.accept)
        self.settled: list[list[WorkflowTask] | None] = []

    def accept(self, run_id: str, workflow_type: str) -> bool:
        if self.owner.slots <= 0:
            return False
        self.owner.slots -= 1
        return True

    def settle(self, granted: list[WorkflowTask] | None) -> None:
        self.settled.append(granted)


class Owner:
    """A worker of this process registered for its queue, with ``slots`` free slots."""

    def __init__(self, slots: int, task_queue: str = "q") -> None:
        self.slots = slots
        self.task_queue = task_queue
        self.tickets: list[FiredTicket] = []

    def offer_start(self, workflow_type: str) -> None:
        return None

    def offer_fired(self) -> FiredTicket | None:
        if self.slots <= 0:
            return None
        self.tickets.append(FiredTicket(self))
        return self.tickets[-1]


async def sleeping(store: Store, clock: VirtualClock, n: int) -> list[str]:
    """``n`` runs, each waiting on a 5 s timer."""
    run_ids = []
    for i in range(n):
        _, handed = await store.start_workflow_eagerly(request(f"wf{i}"), take_any("w"))
        task = handed.granted
        assert task is not None
        await store.complete_workflow_task(task, [StartTimer(1, 5.0)], "w")
        run_ids.append(task.run_id)
    clock.advance_to(clock.now() + 5)
    return run_ids


async def test_fired_timers_lease_their_tasks_to_the_offering_worker_up_to_its_slots(
    store: Store, clock: VirtualClock
) -> None:
    run_ids = await sleeping(store, clock, 3)
    owner = Owner(slots=2)
    store.register_eager("default", "q", owner)
    assert await store.fire_due() == 3
    [ticket] = owner.tickets
    [granted] = ticket.settled
    assert granted is not None and len(granted) == 2
    for task in granted:
        assert task.owner == "a" and task.run_id in run_ids
        assert [e.event_type for e in task.new_events or ()] == [EventType.TIMER_FIRED]
        assert (task.new_events or [])[0].event_id == task.next_event_id - 1
    # The third is left to the pollers; the two leased are held as claimed ones are.
    [left] = await store.claim_workflow_tasks("default", "q", "b", 10)
    assert left.run_id not in {t.run_id for t in granted}
    for task in granted:
        done = await store.complete_workflow_task(task, [], "a")
        assert done.next_event_id is not None


async def test_an_offer_for_another_queue_is_granted_nothing(
    store: Store, clock: VirtualClock
) -> None:
    await sleeping(store, clock, 2)
    owner = Owner(slots=5, task_queue="other")
    store.register_eager("default", "other", owner)
    assert await store.fire_due() == 2
    assert [t.settled for t in owner.tickets] == [[[]]]
    assert len(await store.claim_workflow_tasks("default", "q", "b", 10)) == 2


async def test_an_owner_without_free_slots_is_not_asked_and_unregistered_ones_neither(
    store: Store, clock: VirtualClock
) -> None:
    await sleeping(store, clock, 1)
    full, gone = Owner(slots=0), Owner(slots=5)
    store.register_eager("default", "q", full)
    store.register_eager("default", "q", gone)
    store.unregister_eager("default", "q", gone)
    assert await store.fire_due() == 1
    assert full.tickets == [] and gone.tickets == []
    assert len(await store.claim_workflow_tasks("default", "q", "b", 10)) == 1


async def test_a_firing_transaction_undone_grants_nothing(
    store: Store, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sleeping(store, clock, 2)
    owner = Owner(slots=5)
    store.register_eager("default", "q", owner)
    hits: list[str] = []

    def fail_at_the_second_timer(point: str) -> None:
        hits.append(point)
        # The first timer's task is granted by now (SQLite runs the failed operation of
        # a batch again: it fails there too).
        if len(hits) % 2 == 0:
            raise RuntimeError("the transaction fails")

    monkeypatch.setattr(crash, "hook", fail_at_the_second_timer)
    with pytest.raises(RuntimeError):
        await store.fire_due()
    assert [t.settled for t in owner.tickets] == [[None]]
    monkeypatch.setattr(crash, "hook", None)
    owner.slots = 5
    assert await store.fire_due() == 2  # both timers are still due, and fire once
    granted = owner.tickets[-1].settled[-1]
    assert granted is not None and len(granted) == 2
