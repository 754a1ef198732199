"""The store: the one interface workers and clients use to reach the database.

``Store`` holds the rules (written once, in ``_executions``, ``_workflow_tasks``,
``_activities`` and ``_timers``) and the in-process notifications; a subclass per database
provides transactions (group-committed: operations submitted together share one commit, each
in its own savepoint so one failing never undoes another) and a ``Tx`` for its SQL.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from perdure._common.clock import Clock
from perdure._common.events import HistoryEvent
from perdure._common.payload import Payload
from perdure._errors import ClientClosedError
from perdure._store import _activities as activities
from perdure._store import _deletion as deletion
from perdure._store import _executions as executions
from perdure._store import _reset as resets
from perdure._store import _timers as timers
from perdure._store import _workflow_tasks as workflow_tasks
from perdure._store._base_eager import EagerOps
from perdure._store._base_messages import MessageOps, claim_count, claim_took
from perdure._store._base_reads import ReadOps
from perdure._store._base_schedules import ScheduleOps
from perdure._store._eager import EagerFired, EagerOwner
from perdure._store._effects import Effects
from perdure._store._lifecycle_ops import LifecycleOps
from perdure._store._notify import Flag, Notifier, fire_peer_items
from perdure._store._tx import Tx
from perdure._store._types import (
    ActivityTask,
    ClaimLimits,
    Execution,
    QueryResult,
    ResetRequest,
    TaskToken,
    WorkflowTask,
)

T = TypeVar("T")

# How often pollers and waiters look for other processes' changes if nothing told them.
POLL_INTERVAL = 0.1
_REAL = Clock()


class Store(EagerOps, LifecycleOps, ScheduleOps, MessageOps, ReadOps, ABC):
    """Durable state of every workflow: executions, histories, task queues, timers."""

    # Task pollers' interval stays short: a delayed task becomes claimable by time alone. A
    # close always comes with a commit: a store told of others' commits may look seldom.
    poll_interval = closed_poll_interval = POLL_INTERVAL

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.notifier = Notifier()
        self._closed_waiters: dict[str, list[asyncio.Future[Execution | None]]] = {}
        self._look_for_closed = Flag()
        self._closed_poller: asyncio.Task[None] | None = None
        self._closed = False
        # Running workers of this process by (namespace, task queue), for eager start.
        self._eager_owners: dict[tuple[str, str], list[EagerOwner]] = {}

    # -- what a database backend provides ------------------------------------------------------
    @abstractmethod
    async def transact(self, fn: Callable[[Tx, Effects], Awaitable[T]]) -> T:
        """Run ``fn`` in a write transaction (group-committed) and act on its effects."""

    @abstractmethod
    async def read(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``fn`` against the latest committed state."""

    @abstractmethod
    async def get_history(
        self, run_id: str, after_event_id: int = 0, limit: int | None = None
    ) -> list[HistoryEvent]:
        """A run's events after ``after_event_id``, in order: all of them, or the first
        ``limit``."""

    @abstractmethod
    async def next_wakeup(self) -> float | None:
        """The earliest time a timer, deadline or delayed task falls due, if any."""

    @abstractmethod
    async def is_idle(self) -> bool:
        """No task is ready or held by a worker (the time-skipping test clock may jump)."""

    @abstractmethod
    async def activity_running(self) -> bool:
        """An activity attempt is held by a worker, not handed to an outside completer (real
        time passes on the time-skipping test clock then, so its timeouts come due)."""

    @abstractmethod
    async def get_query_result(self, query_id: int) -> QueryResult | None: ...

    @abstractmethod
    async def closed_among(self, run_ids: Sequence[str]) -> set[str]:
        """Which of these runs are closed."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections (a backend calls :meth:`_wake_on_close` as it closes)."""

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called: every loop that uses the store then stops."""
        return self._closed

    def _closed_error(self) -> ClientClosedError:
        return ClientClosedError(
            "The database connection is closed (Client.close() or the test environment's "
            "shutdown() was called): shut workers down before closing their client, and "
            "connect a new client to go on"
        )

    def _wake_on_close(self) -> None:
        """Whatever waits on the store looks again, and finds it closed: pollers and timer
        services stop, and a wait for a run to close fails."""
        error = self._closed_error()
        waiters, self._closed_waiters = self._closed_waiters, {}
        for futures in waiters.values():
            for future in futures:
                if not future.done():
                    future.set_exception(error)
        self.notifier.wake_all()

    async def ready(self) -> None:
        """Return once the database answers (PostgreSQL connects and migrates on first use:
        this is a first use). While it cannot be reached, this waits as operations do."""
        await self.next_wakeup()

    async def wait_closed(self, run_id: str) -> None:
        """Return once the run is closed (by this process or, seen by polling, another)."""
        closed = self.watch_closed(run_id)
        try:
            if run_id in await self.closed_among([run_id]):
                return
            await closed
        finally:
            self.unwatch_closed(run_id, closed)

    def watch_closed(self, run_id: str) -> asyncio.Future[Execution | None]:
        """A future done once the run is closed (by this process or, seen by polling,
        another), watching from now: a caller reads the run after this, and awaits the
        future if it was open then, missing no close in between. Its result is the closed
        run as its transaction left it when this process closed it, else None (read it).
        Give it back with ``unwatch_closed``."""
        if self._closed:
            raise self._closed_error()
        future: asyncio.Future[Execution | None] = asyncio.get_running_loop().create_future()
        self._closed_waiters.setdefault(run_id, []).append(future)
        if self._closed_poller is None or self._closed_poller.done():
            self._closed_poller = asyncio.get_running_loop().create_task(self._poll_closed())
        return future

    def unwatch_closed(self, run_id: str, future: asyncio.Future[Execution | None]) -> None:
        if future.done() and not future.cancelled():
            future.exception()  # failed by close() after the run was found closed
        waiters = self._closed_waiters.get(run_id)
        if waiters is not None and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._closed_waiters[run_id]

    def _resolve_closed(self, closed: Mapping[str, Execution | None]) -> None:
        """Wake the waiters of these closed runs, each with its run (None: read it)."""
        for run_id, ex in closed.items():
            for future in self._closed_waiters.pop(run_id, ()):
                if not future.done():
                    future.set_result(ex)

    async def _poll_closed(self) -> None:
        # One query per interval (or when a peer says "everything") for every waiter.
        while self._closed_waiters and not self._closed:
            self._look_for_closed.clear()
            await _REAL.wait(self._look_for_closed, _REAL.now() + self.closed_poll_interval)
            waiting = list(self._closed_waiters)
            try:
                for i in range(0, len(waiting), 500):
                    closed = await self.closed_among(waiting[i : i + 500])
                    self._resolve_closed(dict.fromkeys(closed))
            except Exception:  # try again (the store's own retries log a lasting failure)
                pass

    def after_commit(self, fx: Effects) -> None:
        """Wake whatever the committed change concerns (called by the backend)."""
        if not fx.changed and not fx.closed and not fx.queries and not fx.activity_cancels:
            return
        keys: list[Any] = [("queue", *q) for q in fx.queues]
        keys.extend(("closed", run_id) for run_id in fx.closed)
        if fx.closed and self._closed_waiters:
            self._resolve_closed(fx.closed)
        keys.extend(("query", query_id) for query_id in fx.queries)
        keys.extend(fx.keys)
        keys.append(("changed",))
        self.notifier.fire(keys)
        if fx.wake_at is not None:
            self.notifier.wake_at(fx.wake_at)
        for run_id, seq in fx.activity_cancels:
            self.notifier.publish("activity_cancel", (run_id, seq))

    def woken_by_peer(self, items: list[Any] | None) -> None:
        """Wake what another process's commit concerns: its wake-up items (a NOTIFY payload,
        a SQLite datagram; see ``fire_peer_items``), or None if anything may have changed."""
        if self._closed:
            return
        if items is None:
            self.notifier.fire(self.notifier.listened())
            self.notifier.wake_at(float("-inf"))
            self._look_for_closed.set()
            return
        closed = fire_peer_items(self.notifier, items)
        if closed and self._closed_waiters:
            self._resolve_closed(dict.fromkeys(closed))

    # -- executions (a start: see EagerOps) ------------------------------------------------------
    async def signal(
        self,
        namespace: str,
        workflow_id: str,
        run_id: str | None,
        name: str,
        payloads: list[Payload],
        identity: str,
        header: dict[str, Payload] | None = None,
        request_id: str | None = None,
    ) -> None:
        """Signal a run; one whose ``request_id`` the workflow id took already records
        nothing (see ``executions.signal``)."""
        await self.transact(
            lambda tx, fx: executions.signal(
                tx,
                namespace,
                workflow_id,
                run_id,
                name,
                payloads,
                identity,
                self.clock.now(),
                fx,
                header,
                request_id,
            )
        )

    async def request_cancel(
        self, namespace: str, workflow_id: str, run_id: str | None, reason: str, identity: str
    ) -> None:
        await self.transact(
            lambda tx, fx: executions.request_cancel(
                tx, namespace, workflow_id, run_id, reason, identity, self.clock.now(), fx
            )
        )

    async def terminate(
        self, namespace: str, workflow_id: str, run_id: str | None, reason: str, identity: str
    ) -> None:
        async def op(tx: Tx, fx: Effects) -> None:
            ex = await executions.find(tx, namespace, workflow_id, run_id, must_be_open=True)
            await executions.terminate(tx, ex, reason, identity, self.clock.now(), fx)

        await self.transact(op)

    async def reset_workflow(self, req: ResetRequest) -> str:
        """Reset a run to one of its workflow tasks (see ``_reset``); returns the new run id.

        Raises:
            WorkflowNotFoundError: no such run.
            ValueError: no such reset point, or the run cannot be reset there.
        """
        return await self.transact(lambda tx, fx: resets.reset(tx, req, self.clock.now(), fx))

    async def delete_workflow(
        self, namespace: str, workflow_id: str, run_id: str | None, identity: str
    ) -> str:
        """Delete a run and all it owns, terminating it first if open; returns its id."""
        return await self.transact(
            lambda tx, fx: deletion.delete_workflow(
                tx, namespace, workflow_id, run_id, identity, self.clock.now(), fx
            )
        )

    dialect = "sqlite"
    read_only = False  # opened read-only (sqlite:///path?mode=ro): every change is refused

    # -- workflow tasks ------------------------------------------------------------------------
    async def claim_workflow_tasks(
        self, namespace: str, task_queue: str, owner: str, limit: int | Callable[[], int]
    ) -> list[WorkflowTask]:
        async def op(tx: Tx, fx: Effects) -> list[WorkflowTask]:
            now = self.clock.now()
            tasks = await workflow_tasks.claim(
                tx, namespace, task_queue, owner, now, claim_count(limit), fx
            )
            claim_took(limit, len(tasks))
            return tasks

        return await self.transact(op)

    async def extend_workflow_tasks(self, tasks: Sequence[WorkflowTask]) -> list[WorkflowTask]:
        """Renew the leases of workflow tasks a worker still works on, in one transaction;
        returns those it no longer holds (recorded, or its lease ran out and another took it).
        """

        async def op(tx: Tx, fx: Effects) -> list[WorkflowTask]:
            now = self.clock.now()
            # In task id order, so that two renewals lock their rows in the same order.
            ordered = sorted(tasks, key=lambda t: t.task_id)
            return [t for t in ordered if not await workflow_tasks.extend_lease(tx, t, now, fx)]

        return await self.transact(op)

    async def fail_workflow_task(
        self, task: WorkflowTask, failure: dict[str, Any], identity: str
    ) -> None:
        await self.transact(
            lambda tx, fx: workflow_tasks.fail(tx, task, failure, identity, self.clock.now(), fx)
        )

    async def hand_back_workflow_task(self, task: WorkflowTask, reason: str) -> None:
        """The worker could not record the task: it runs again now (see
        ``_workflow_tasks.hand_back``).

        Raises:
            StaleTaskError: the task is no longer held by this worker's attempt (its
                commands were recorded after all, or its lease ran out).
        """
        await self.transact(
            lambda tx, fx: workflow_tasks.hand_back(tx, task, reason, self.clock.now(), fx)
        )

    # -- activity tasks ------------------------------------------------------------------------
    async def claim_activity_tasks(
        self,
        namespace: str,
        task_queue: str,
        owner: str,
        limit: int | Callable[[], int],
        limits: ClaimLimits | None = None,
    ) -> list[ActivityTask]:
        async def op(tx: Tx, fx: Effects) -> list[ActivityTask]:
            now = self.clock.now()
            tasks = await activities.claim(
                tx, namespace, task_queue, owner, now, claim_count(limit), fx, limits
            )
            claim_took(limit, len(tasks))
            return tasks

        return await self.transact(op)

    async def activity_completes_async(self, token: TaskToken) -> None:
        """The attempt called ``raise_complete_async``: it waits for an outside completion."""

        async def op(tx: Tx, fx: Effects) -> None:
            await tx.mark_async_pending(token.run_id, token.seq, token.attempt)
            fx.changed = True

        await self.transact(op)

    async def heartbeat_activity(
        self, token: TaskToken, owner: str | None, details: list[Payload] | None
    ) -> bool:
        async def op(tx: Tx, fx: Effects) -> bool:
            # Real time passes in an attempt that heartbeats: the test kit's clock, if it
            # owes some, moves before the next heartbeat deadline is counted from it.
            self.clock.catch_up()
            now = self.clock.now()
            fx.changed = True
            return await activities.heartbeat(tx, token, owner, details, now)

        return await self.transact(op)

    # -- time ----------------------------------------------------------------------------------
    async def fire_due(self, limit: int = 500) -> int:
        """Fire due timers and schedules and act on passed deadlines; returns how many."""

        # The workers of this process take the workflow tasks the timers schedule, leased
        # to them in the same transaction (eager, as an activity's result hands its over).
        tickets = [
            ticket
            for owners in self._eager_owners.values()
            for owner in owners
            if (ticket := owner.offer_fired()) is not None
        ]
        offers = [ticket.offer for ticket in tickets]

        async def op(tx: Tx, fx: Effects) -> tuple[int, list[tuple[str, str]], EagerFired | None]:
            now = self.clock.now()
            eager = EagerFired(offers) if offers else None  # afresh: the operation may run again
            handled = await timers.fire_due(tx, now, limit, fx, eager)
            return handled, await tx.due_schedules(now, limit), eager

        try:
            handled, due, eager = await self.transact(op)
        except BaseException:
            for ticket in tickets:
                ticket.settle(None)
            raise
        for i, ticket in enumerate(tickets):
            ticket.settle(None if eager is None else eager.granted[i])
        return handled + await self.fire_schedules(due)

    async def expire_leases(
        self, owner: str, keep: frozenset[tuple[str, int]] = frozenset()
    ) -> int:
        """Treat every lease ``owner`` holds as run out now (its worker died); returns how
        many. Activities in ``keep`` ((run_id, seq) awaiting async completion) keep theirs."""
        return await self.transact(
            lambda tx, fx: timers.expire_leases(tx, owner, keep, self.clock.now(), fx)
        )
