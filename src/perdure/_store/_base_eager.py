"""The store's operations that may hand a task over eagerly (see ``_eager``): a start, a
workflow task's commands, an activity's outcome. Each takes the worker's offer, makes its
grant afresh in every run of its transaction, and returns it. ``Store`` inherits them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from perdure._common.clock import Clock
from perdure._common.commands import Command
from perdure._common.payload import Payload
from perdure._store import _activities as activities
from perdure._store import _starts as starts
from perdure._store import _workflow_tasks as workflow_tasks
from perdure._store._eager import (
    ActivityOffer,
    EagerActivities,
    EagerOwner,
    EagerWorkflowTask,
    Recorded,
    WorkflowTaskOffer,
)
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import StartResult, StartWorkflowRequest, TaskToken, WorkflowTask

T = TypeVar("T")


def _grant(offer: WorkflowTaskOffer | None) -> EagerWorkflowTask | None:
    return None if offer is None else EagerWorkflowTask(offer)


async def _continue_in_commit(
    tx: Tx, eager: EagerWorkflowTask | None, now: float, fx: Effects
) -> EagerWorkflowTask | None:
    """Run and record, in the operation's transaction, the workflow task it leased to the
    offering worker, if the offer's ``then`` runs it (``eager.continued`` is then the id of
    the first event after its commands). Returns ``eager``."""
    then = None if eager is None else eager.offer.then
    if then is None or eager is None or eager.granted is None:
        return await _write_unwritten(tx, eager, fx)
    follow = then(eager.granted)
    if follow is None:
        return await _write_unwritten(tx, eager, fx)
    commands, offer = follow
    acts = None if offer is None else EagerActivities(offer)
    eager.continued = await workflow_tasks.complete(
        tx, eager.granted, commands, then.identity, now, fx, acts, unwritten=eager.unwritten
    )
    eager.unwritten = None
    eager.activities = acts
    return eager


async def _write_unwritten(
    tx: Tx, eager: EagerWorkflowTask | None, fx: Effects
) -> EagerWorkflowTask | None:
    """The granted task is run after the commit after all: write its row (leased to the
    worker) in this transaction. Returns ``eager``."""
    if eager is None or eager.unwritten is None:
        return eager
    row, _ = eager.unwritten
    eager.unwritten = None
    await tx.insert_task(row)
    fx.wake(row.deadline)
    if eager.granted is not None:
        eager.granted.task_id = row.task_id
    return eager


class EagerOps(ABC):
    """Start runs, record workflow tasks' commands and activities' outcomes, each leasing
    what it creates to the worker that offered to take it."""

    clock: Clock
    # Running workers of this process by (namespace, task queue), for eager start.
    _eager_owners: dict[tuple[str, str], list[EagerOwner]]

    @abstractmethod
    async def transact(self, fn: Callable[[Tx, Effects], Awaitable[T]]) -> T: ...

    def register_eager(self, namespace: str, task_queue: str, owner: EagerOwner) -> None:
        """A worker of this process polls ``task_queue``: offer it the starts made here."""
        self._eager_owners.setdefault((namespace, task_queue), []).append(owner)

    def unregister_eager(self, namespace: str, task_queue: str, owner: EagerOwner) -> None:
        owners = self._eager_owners.get((namespace, task_queue), [])
        if owner in owners:
            owners.remove(owner)

    async def start_workflow(self, req: StartWorkflowRequest) -> StartResult:
        """Start a run. A worker of this process polling its queue (with a free slot) is
        leased its first workflow task in the same transaction, and may run and record it
        there too (eager workflow start); a delayed start or a signal-with-start is not."""
        ticket = None
        if req.start_signal is None and not req.start_delay:
            for owner in self._eager_owners.get((req.namespace, req.task_queue), ()):
                ticket = owner.offer_start(req.workflow_type)
                if ticket is not None:
                    break
        if ticket is None:
            return await self.transact(
                lambda tx, fx: starts.start_workflow(tx, req, self.clock.now(), fx)
            )
        try:
            result, handed = await self.start_workflow_eagerly(req, ticket.offer)
        except BaseException:
            await ticket.settle(None)
            raise
        await ticket.settle(handed)
        return result

    async def start_workflow_eagerly(
        self, req: StartWorkflowRequest, offer: WorkflowTaskOffer
    ) -> tuple[StartResult, EagerWorkflowTask]:
        """Start a run, its first workflow task leased to the worker offering ``offer`` if it
        takes it (and, with ``offer.then``, run and recorded in the same transaction): the
        result, and what the transaction handed the worker."""

        async def op(tx: Tx, fx: Effects) -> tuple[StartResult, EagerWorkflowTask]:
            now = self.clock.now()
            eager = EagerWorkflowTask(offer)  # afresh: the operation may run again
            result = await starts.start_workflow(tx, req, now, fx, eager)
            await _continue_in_commit(tx, eager, now, fx)
            return result, eager

        return await self.transact(op)

    async def complete_workflow_task(
        self,
        task: WorkflowTask,
        commands: Sequence[Command],
        identity: str,
        offer: ActivityOffer | None = None,
    ) -> Recorded:
        """Record a task's commands, the activities they schedule leased to the worker
        offering ``offer`` if it takes them."""

        async def op(tx: Tx, fx: Effects) -> Recorded:
            eager = None if offer is None else EagerActivities(offer)  # afresh on a rerun
            next_event_id = await workflow_tasks.complete(
                tx, task, commands, identity, self.clock.now(), fx, eager
            )
            return Recorded(next_event_id, eager)

        return await self.transact(op)

    async def complete_activity(
        self,
        token: TaskToken,
        owner: str | None,
        result: Payload,
        identity: str,
        offer: WorkflowTaskOffer | None = None,
    ) -> EagerWorkflowTask | None:
        """Record an activity's result. With ``offer``, the workflow task it schedules may be
        leased to the offering worker and, with ``offer.then``, run and its commands recorded
        in the same transaction: returns what was handed over so."""

        async def op(tx: Tx, fx: Effects) -> EagerWorkflowTask | None:
            eager = _grant(offer)  # afresh: the operation may run again
            now = self.clock.now()
            await activities.complete(tx, token, owner, result, identity, now, fx, eager)
            return await _continue_in_commit(tx, eager, now, fx)

        return await self.transact(op)

    async def fail_activity(
        self,
        token: TaskToken,
        owner: str | None,
        failure: dict[str, Any],
        identity: str,
        offer: WorkflowTaskOffer | None = None,
    ) -> EagerWorkflowTask | None:
        async def op(tx: Tx, fx: Effects) -> EagerWorkflowTask | None:
            eager = _grant(offer)
            await activities.fail(tx, token, owner, failure, identity, self.clock.now(), fx, eager)
            return await _write_unwritten(tx, eager, fx)

        return await self.transact(op)

    async def activity_cancelled(
        self,
        token: TaskToken,
        owner: str | None,
        details: list[Payload],
        identity: str,
        offer: WorkflowTaskOffer | None = None,
    ) -> EagerWorkflowTask | None:
        async def op(tx: Tx, fx: Effects) -> EagerWorkflowTask | None:
            eager = _grant(offer)
            now = self.clock.now()
            await activities.cancelled(tx, token, owner, details, identity, now, fx, eager)
            return await _write_unwritten(tx, eager, fx)

        return await self.transact(op)
