"""Eager dispatch, the store's side: a task a worker can run itself is leased to it in the
transaction that creates it.

A workflow task that schedules activities on its own task queue, an activity whose outcome
schedules a workflow task of a run the worker holds in its cache, a start of a run that a
worker of this process runs, a timer fired in this process for a run of a type a worker
of the process runs: in each, the new task is inserted already leased to that worker
(exactly as a claim would lease it) and handed over in memory when the transaction commits.
That saves the claim transaction, the wake-up and the poll per step, and the durability is
the same: the task is in the database with its lease, so a worker that dies holding it loses
it when the lease runs out, as with a claimed task. (Temporal does the same for activities,
"eager activity execution", and for starts, "eager workflow start".)

What a worker is willing to take is an *offer* (frozen, made before the operation); what one
run of the operation leased to it is a *grant* (made afresh by each run, so a run undone and
run again leaves nothing behind) and is what the operation returns. The worker's side, who
offers and what it does with a grant, is one object per worker (``perdure.worker._eager``),
registered with the store for the starts of this process (``EagerOwner``).

Further, a worker that gets back the workflow task of a run it holds in its cache can run it
inside the transaction that records the activity's outcome (``InCommit``), so the outcome,
the workflow's next decisions and the next activity's lease share one commit: one fsync a
step instead of two. A start does the same with the run's first task. If that transaction
fails or is run again, what ran is thrown away with it (the instance is dropped, the task
replayed from history).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from perdure._common.commands import Command
from perdure._store._types import ActivityTask, Execution, TaskRow, WorkflowTask


@dataclass(frozen=True, slots=True)
class ActivityOffer:
    """A worker's offer to run up to ``limit`` of the activities a workflow task it
    completes schedules on ``task_queue`` (of the types it has registered)."""

    namespace: str
    task_queue: str
    owner: str
    activity_types: frozenset[str]
    limit: int


@dataclass(slots=True)
class EagerActivities:
    """The activities one run of an operation leased to the worker offering ``offer``."""

    offer: ActivityOffer
    granted: list[ActivityTask] = field(default_factory=list)

    @property
    def owner(self) -> str:
        return self.offer.owner

    def wants(self, namespace: str, task_queue: str, activity_type: str, taken: int) -> bool:
        offer = self.offer
        return (
            taken < offer.limit
            and task_queue == offer.task_queue
            and namespace == offer.namespace
            and activity_type in offer.activity_types
        )


@dataclass(frozen=True, slots=True)
class Recorded:
    """A workflow task's commands recorded: the id of the first event after them (None:
    refused, because inputs arrived that the code has not seen while it was deciding to
    close), and the activities leased with them to the offering worker."""

    next_event_id: int | None
    activities: EagerActivities | None = None


class InCommit(Protocol):
    """Given the workflow task an operation leased to the offering worker (inside the
    operation's transaction): the commands it produces and an offer for the activities they
    schedule, to be recorded in the same transaction; or None to leave it for after the
    commit. Called once per run of the operation (a second call means the first run was
    undone)."""

    identity: str  # the worker's, recorded in the task's WorkflowTaskCompleted

    def __call__(
        self, task: WorkflowTask
    ) -> tuple[Sequence[Command], ActivityOffer | None] | None: ...


@dataclass(frozen=True, slots=True)
class WorkflowTaskOffer:
    """A worker's offer to run the workflow task an operation schedules, if it is on
    ``task_queue`` and ``accept(run_id, workflow_type)`` says yes (the run is in its cache,
    or the worker runs that type); one at most. With ``then``, the task may be run and
    recorded in the operation's own transaction."""

    namespace: str
    task_queue: str
    owner: str
    accept: Callable[[str, str], bool]
    then: InCommit | None = None


@dataclass(slots=True)
class EagerWorkflowTask:
    """What one run of an operation leased to the worker offering ``offer``: the workflow
    task, and if ``offer.then`` ran it in the transaction, the id of the first event after
    its commands (``continued``) and the activities they leased to the worker."""

    offer: WorkflowTaskOffer
    granted: WorkflowTask | None = None
    continued: int | None = None
    activities: EagerActivities | None = None
    # The granted task's row and run while the offer's ``then`` may still run it in the
    # transaction: the row is written only if it does not (``_base_eager``), since a task
    # begun and completed in one transaction needs none (no lease outlives it).
    unwritten: tuple[TaskRow, Execution] | None = None


@dataclass(slots=True)
class EagerFired:
    """The workflow tasks one run of firing timers leased to the offering workers
    (``granted[i]`` to the worker of ``offers[i]``). An offer's ``accept`` is asked once
    per task, and a worker reserves its slot there (its ``then`` is unused: the tasks run
    after the commit)."""

    offers: Sequence[WorkflowTaskOffer]
    granted: list[list[WorkflowTask]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.granted = [[] for _ in self.offers]

    def slot(self, namespace: str, task_queue: str) -> tuple[int, EagerWorkflowTask] | None:
        """A grant for the next workflow task of a run on ``task_queue``, if a worker
        offers to take its tasks."""
        for i, offer in enumerate(self.offers):
            if offer.task_queue == task_queue and offer.namespace == namespace:
                return i, EagerWorkflowTask(offer)
        return None

    def took(self, i: int, eager: EagerWorkflowTask) -> None:
        if eager.granted is not None:
            self.granted[i].append(eager.granted)


class FiredTicket(Protocol):
    """A worker's offer for the workflow tasks that firing timers schedules."""

    offer: WorkflowTaskOffer

    def settle(self, granted: list[WorkflowTask] | None) -> None:
        """After the transaction (``granted`` None: it did not commit): run the tasks
        granted; release the slots its offer reserved either way."""


class StartTicket(Protocol):
    """A worker's reservation for the first workflow task of a run being started."""

    offer: WorkflowTaskOffer

    async def settle(self, handed: EagerWorkflowTask | None) -> None:
        """After the start's transaction (``handed`` None: it did not commit): finish what
        ran in it, else run the task granted; release the reservation either way."""


class EagerOwner(Protocol):
    """A running worker of this process, registered with the store by its task queue: it
    may take the first workflow task of a run started here (eager workflow start)."""

    def offer_start(self, workflow_type: str) -> StartTicket | None:
        """A reservation for a run of this type, or None."""

    def offer_fired(self) -> FiredTicket | None:
        """An offer for the workflow tasks that firing timers schedules on its queue (a
        slot reserved as each is accepted), or None."""


def lease(row: TaskRow, owner: str, now: float) -> None:
    """Set the lease of a task about to be inserted, as a claim at ``now`` would."""
    row.lease_owner = owner
    row.lease_expires = now + row.lease_seconds
    row.started_at = now
    row.deadline = min(
        d
        for d in (row.lease_expires, row.final_deadline, _plus(now, row.heartbeat_timeout))
        if d is not None
    )


def _plus(now: float, seconds: float | None) -> float | None:
    return now + seconds if seconds else None
