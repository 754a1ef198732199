"""Eager dispatch: a worker that makes work it can do itself takes it in the same transaction.

A workflow task that schedules activities on its own task queue, an activity whose outcome
schedules a workflow task of a run the worker holds in its cache, a client starting a
workflow that a worker in the same process polls for: in each, the new task is inserted
already leased to that worker (exactly as a claim would lease it) and handed over in memory
when the transaction commits. That saves the claim transaction, the wake-up and the poll per
step, and the durability is the same: the task is in the database with its lease, so a worker
that dies holding it loses it when the lease runs out, as with a claimed task. (Temporal does
the same for activities, "eager activity execution", and for starts, "eager workflow start".)

Further, a worker that gets back the workflow task of a run it holds in its cache can run it
inside the transaction that records the activity's outcome (``ContinueInCommit``), so the
outcome, the workflow's next decisions and the next activity's lease share one commit: one
fsync a step instead of two. A start does the same with the run's first task. If that
transaction fails or is run again, what ran is thrown away with it (the instance is dropped,
the task replayed from history).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from perdure._common.commands import Command
from perdure._store._types import ActivityTask, TaskRow, WorkflowTask


@dataclass(slots=True)
class EagerActivities:
    """A worker's offer to run up to ``limit`` of the activities a workflow task it
    completes schedules on ``task_queue`` (of the types it has registered)."""

    namespace: str
    task_queue: str
    owner: str
    activity_types: frozenset[str]
    limit: int
    granted: list[ActivityTask] = field(default_factory=list)

    def wants(self, namespace: str, task_queue: str, activity_type: str, taken: int) -> bool:
        return (
            taken < self.limit
            and task_queue == self.task_queue
            and namespace == self.namespace
            and activity_type in self.activity_types
        )


@dataclass(slots=True)
class EagerWorkflowTask:
    """A worker's offer to run the workflow task an operation schedules, if it is on
    ``task_queue`` and ``accept(run_id, workflow_type)`` says yes (the run is in its cache,
    or the worker runs that type); one at most."""

    namespace: str
    task_queue: str
    owner: str
    accept: Callable[[str, str], bool]
    granted: WorkflowTask | None = None


class ContinueInCommit(Protocol):
    """Given the workflow task an activity's outcome hands back (inside the transaction that
    records the outcome): the commands it produces and an offer for the activities they
    schedule, to be recorded in the same transaction; or None to leave it for after the
    commit. Called once per run of the operation (a second call means the first run was
    undone)."""

    identity: str  # the worker's, recorded in the task's WorkflowTaskCompleted

    def __call__(
        self, task: WorkflowTask
    ) -> tuple[Sequence[Command], EagerActivities | None] | None: ...

    async def finish(self, committed: bool, next_event_id: int | None) -> bool:
        """After the transaction: whether the task was dealt with in it (else the worker
        runs the task it was granted as usual)."""


class LocalWorker(Protocol):
    """A running worker of this process, as the store's clients see it: it may take the
    first workflow task of a run started here (eager workflow start)."""

    def offer_start(self, workflow_type: str) -> EagerWorkflowTask | None:
        """An offer for a run of this type (a slot is reserved), or None."""

    def continue_start(self) -> ContinueInCommit | None:
        """To run the first task inside the start's transaction too, if it can be."""

    async def settle_workflow_task(
        self,
        offer: EagerWorkflowTask,
        committed: bool,
        then: ContinueInCommit | None = None,
        next_event_id: int | None = None,
    ) -> None:
        """After the transaction: finish what ``then`` ran in it, else run the task the
        offer was granted (if ``committed``); release its slot either way."""


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
