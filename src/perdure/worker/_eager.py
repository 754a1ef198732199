"""Eager dispatch in a worker: the one owner of the work a worker hands itself.

One ``EagerDispatch`` per worker holds its side of eager dispatch (see
``perdure._store._eager`` for the store's): the slots it reserves before an operation that
may lease it a task, the offers it makes, running a workflow task inside the transaction
that hands it over (``_InCommit``), and settling after the commit (running what was granted,
releasing the reservations). The worker's two halves record through it, and it registers
with the store once, for the starts made in this process. The eager path, end to end:

1. a start (``Store.start_workflow``) asks the registered dispatch (``offer_start``): a slot
   is reserved, and the run's first task is leased to the worker, run and recorded in the
   start's commit; its activities on the worker's queue are leased to it there too;
2. the activities run; each outcome is recorded with an offer for the workflow task it
   schedules (``record_outcome``), which, the run being cached, is run and recorded in the
   outcome's commit, leasing the next activities;
3. after each commit, ``_Ticket.settle`` keeps the instance for the next task and starts the
   activities granted (or, when the task could not be run in the commit, runs it as usual).

And a timer firing in this process's timer service leases the workflow task it schedules to
the worker (``offer_fired``), run after the commit (``_FiredTicket.settle``).

A start is not taken while the worker's cache has no room for its run without evicting one
about to get its activity's result (``WorkflowTasks.room_for_new``, which bounds the
poller's claims too): its first task is queued, for the poller once there is room.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from perdure._common.commands import (
    CancelTimer,
    Command,
    CompleteWorkflow,
    RequestCancelActivity,
    ScheduleActivity,
    StartTimer,
    UpsertMemo,
)
from perdure._common.metrics import WorkflowClose
from perdure._errors import PayloadSizeError
from perdure._runtime import WorkflowRunner, WorkflowTaskFailure
from perdure._store import Store
from perdure._store._eager import (
    ActivityOffer,
    EagerActivities,
    EagerWorkflowTask,
    WorkflowTaskOffer,
)
from perdure._store._types import ActivityTask, WorkflowTask
from perdure.worker._activity_worker import Activities, Outcome
from perdure.worker._metrics import closing
from perdure.worker._slots import Slots
from perdure.worker._workflow_worker import (
    WorkflowTasks,
    check_command_payloads,
    handed_over,
    report_task,
)

# What a workflow task may record inside the transaction of an activity's outcome: commands
# whose recording cannot fail for a reason of the workflow's own (a child's id taken, a search
# attribute of the wrong type), which must fail the task, never undo the outcome.
_IN_COMMIT = (
    ScheduleActivity,
    StartTimer,
    CancelTimer,
    RequestCancelActivity,
    CompleteWorkflow,
    UpsertMemo,
)


class EagerDispatch:
    """A worker's eager dispatch: what it offers to take, and what it does with a grant."""

    def __init__(
        self,
        store: Store,
        *,
        namespace: str,
        task_queue: str,
        owner: str,
        identity: str,
        workflow_slots: Slots,
        activity_slots: Slots,
        activity_types: frozenset[str],
        paced: bool,
        stopping: asyncio.Event,
    ) -> None:
        self._store = store
        self._namespace = namespace
        self._task_queue = task_queue
        self._owner = owner
        self._identity = identity
        self._wft_slots = workflow_slots
        self._activity_slots = activity_slots
        # Dynamic activities are not handed over eagerly: they are claimed from the queue.
        self._activity_types = activity_types
        # Activities handed over eagerly would not be counted against the rate limits.
        self._paced = paced
        self._stopping = stopping
        self._workflows: WorkflowTasks | None = None
        self._activities: Activities | None = None

    def serve(self, workflows: WorkflowTasks | None, activities: Activities | None) -> None:
        """The worker's halves, which record through this and run what it is granted."""
        self._workflows, self._activities = workflows, activities

    # -- the worker's running life -------------------------------------------------------------
    def register(self) -> None:
        """Take the first workflow task of the runs this process starts on the queue."""
        if self._workflows is not None:
            self._store.register_eager(self._namespace, self._task_queue, self)

    def unregister(self) -> None:
        self._store.unregister_eager(self._namespace, self._task_queue, self)

    # -- a start (called by the store) ---------------------------------------------------------
    def offer_start(self, workflow_type: str) -> _Ticket | None:
        """A client of this process starts a run: take its first task if this worker runs
        its type and, when the start's transaction runs, has a slot free (eager workflow
        start), and run it in the commit."""
        wf = self._workflows
        if wf is None or self._stopping.is_set() or not wf.runs_type(workflow_type):
            return None
        return _Ticket(
            self,
            wf,
            lambda _, wtype: wf.runs_type(wtype) and wf.room_for_new() != 0,
            start=True,
            run_it=True,
        )

    # -- timers firing (called by the store) ---------------------------------------------------
    def offer_fired(self) -> _FiredTicket | None:
        """The timer service fires timers: take, while slots are free, the workflow tasks
        they schedule for runs of the types this worker runs (run after the commit, from
        the cache when the run is there)."""
        wf = self._workflows
        if wf is None or self._stopping.is_set() or self._wft_slots.free() <= 0:
            return None
        return _FiredTicket(self, wf)

    # -- a workflow task's commands ------------------------------------------------------------
    async def complete_workflow_task(
        self, task: WorkflowTask, runner: WorkflowRunner, commands: Sequence[Command]
    ) -> int | None:
        """Record a task's commands, the activities they schedule on this worker leased to
        it in the same transaction; then keep the instance and run those activities."""
        own = self._schedules_own(commands)
        offer = self._offer_activities(own)
        try:
            done = await self._store.complete_workflow_task(task, commands, self._identity, offer)
        except BaseException:
            self._settle_activities(offer, None)
            raise
        await self._recorded(task, runner, done.next_event_id, offer, done.activities, own > 0)
        return done.next_event_id

    async def _recorded(
        self,
        task: WorkflowTask,
        runner: WorkflowRunner,
        next_event_id: int | None,
        offer: ActivityOffer | None,
        granted: EagerActivities | None,
        awaiting: bool,
    ) -> None:
        """A task's commands are committed (``next_event_id`` None: refused): run the
        activities leased with them, and keep the instance for the run's next task."""
        wf = self._workflows
        assert wf is not None
        try:
            if wf.crash_hook is not None and next_event_id is not None:
                await wf.crash_hook("workflow_task_completed", next_event_id - 1, task)
        except BaseException:
            self._settle_activities(offer, None)
            raise
        self._settle_activities(offer, granted)
        wf.keep(task, runner, next_event_id, awaiting)

    def _offer_activities(self, own: int) -> ActivityOffer | None:
        """Before a workflow task's commands are recorded: slots for the ``own`` activities
        they schedule that this worker runs, leased to it in the same transaction."""
        if self._activities is None or self._stopping.is_set() or self._paced:
            return None
        n = min(own, self._activity_slots.free())
        if n <= 0:
            return None
        self._activity_slots.reserved += n
        return ActivityOffer(
            self._namespace, self._task_queue, self._owner, self._activity_types, n
        )

    def _schedules_own(self, commands: Sequence[Command]) -> int:
        """How many of the activities ``commands`` schedule this worker runs."""
        if self._activities is None:
            return 0
        return sum(
            1
            for c in commands
            if isinstance(c, ScheduleActivity)
            and c.task_queue == self._task_queue
            and c.activity_type in self._activity_types
        )

    def _settle_activities(
        self, offer: ActivityOffer | None, granted: EagerActivities | None
    ) -> None:
        """Release the slots of ``offer``; run the activities ``granted`` (None: the
        transaction did not commit, or the worker is not to act on it)."""
        if offer is None:
            return
        self._activity_slots.release(offer.limit)
        if granted is not None and self._activities is not None:
            for task in granted.granted:
                self._activity_slots.launch(self._activities.run(task))

    # -- an activity's outcome -----------------------------------------------------------------
    async def record_outcome(
        self, task: ActivityTask, outcome: Outcome, value: Any, *, eager: bool
    ) -> None:
        """Record an attempt's outcome. With ``eager``, the workflow task it schedules is
        leased to this worker if it holds the run in its cache, and a result has it run and
        recorded in the same commit."""
        ticket = self._offer_next_task(outcome is Outcome.COMPLETED) if eager else None
        offer = None if ticket is None else ticket.offer
        store, token, owner, identity = self._store, task.token, task.owner, self._identity
        handed = None
        try:
            if outcome is Outcome.COMPLETED:
                handed = await store.complete_activity(token, owner, value, identity, offer)
            elif outcome is Outcome.FAILED:
                handed = await store.fail_activity(token, owner, value, identity, offer)
            else:
                handed = await store.activity_cancelled(token, owner, value, identity, offer)
        finally:
            if ticket is not None:
                await ticket.settle(handed)

    def _offer_next_task(self, run_it: bool) -> _Ticket | None:
        """Before an activity's outcome is recorded: an offer for the workflow task it
        schedules, if this worker holds the run in its cache (with ``run_it``, to run it in
        the outcome's commit); the slot is reserved when the transaction runs."""
        wf = self._workflows
        if wf is None or self._activities is None or self._stopping.is_set():
            return None
        cache = wf.cache
        return _Ticket(self, wf, lambda run_id, _: run_id in cache, start=False, run_it=run_it)


class _Ticket:
    """An offer for the task an operation may hand over (a start's first, or the one an
    activity's outcome schedules), and the workflow task slot it holds (``_Reservation``).

    A task run in the transaction (``_InCommit``) gives its slot back as soon as it has run
    (its commands are recorded in the same transaction, so no lease outlives it); a task
    leased to be run after the commit keeps it until ``settle`` launches it. No slot free:
    the task is queued as usual, for a poller."""

    def __init__(
        self,
        dispatch: EagerDispatch,
        workflows: WorkflowTasks,
        wants: Callable[[str, str], bool],
        *,
        start: bool,
        run_it: bool,
    ) -> None:
        self._workflows = workflows
        # The offer and the in-commit run hold the reservation, not this ticket: nothing
        # refers back to it, so that a ticket and all it holds are freed as soon as it is
        # settled (two a workflow), not left to the garbage collector.
        self._slot = _Reservation(dispatch, wants, beyond=not start)
        self._then = (
            _InCommit(dispatch, workflows, self._slot, start=start)
            if run_it and workflows.codec_free
            else None
        )
        self.offer = WorkflowTaskOffer(
            dispatch._namespace,
            dispatch._task_queue,
            dispatch._owner,
            self._slot.accept,
            self._then,
        )

    async def settle(self, handed: EagerWorkflowTask | None) -> None:
        """After the operation (``handed`` None: it did not commit): finish what ran in its
        commit, else run the task it was granted; release the slot either way."""
        done = False
        try:
            if self._then is not None:
                done = await self._then.finish(handed)
        finally:
            self._slot.ran()
            if handed is not None and not done and handed.granted is not None:
                self._slot.slots.launch(self._workflows.process(handed.granted))


class _Reservation:
    """The workflow task slot of a ticket. It is reserved inside the operation's transaction,
    when the task is about to be leased (``accept``), not when the operation is queued: a
    burst of operations queued for one commit batch does not hold every slot before any of
    them runs. A run of the operation undone and run again reserves afresh if it needs one.

    An activity outcome's ticket takes its cached run's next task with every slot busy
    (``beyond``; the overshoot is bounded by the activities in flight): left to a poller, it
    waited for a claim its own run held off (``room_for_new``), counted as awaiting it."""

    __slots__ = ("_beyond", "_dispatch", "_held", "_wants", "slots")

    def __init__(
        self, dispatch: EagerDispatch, wants: Callable[[str, str], bool], *, beyond: bool
    ) -> None:
        self._dispatch = dispatch
        self._wants = wants
        self._beyond = beyond
        self._held = False
        self.slots = dispatch._wft_slots

    def accept(self, run_id: str, workflow_type: str) -> bool:
        """Inside the operation's transaction: whether to lease the task to this worker,
        reserving a slot for it if none is held."""
        if self._dispatch._stopping.is_set() or not self._wants(run_id, workflow_type):
            return False
        if not self._held:
            if self.slots.free() <= 0 and not self._beyond:
                return False
            self.slots.reserved += 1
            self._held = True
        return True

    def ran(self) -> None:
        """The task has run inside the transaction, or the operation is settled: the slot is
        free again."""
        if self._held:
            self._held = False
            self.slots.release(1)


class _FiredTicket:
    """The offer for the workflow tasks that firing timers may hand over: a slot is
    reserved as each is accepted (none held while nothing is due), until settled."""

    def __init__(self, dispatch: EagerDispatch, workflows: WorkflowTasks) -> None:
        self._workflows = workflows
        self._slots = _FiredSlots(dispatch._wft_slots, workflows)  # no reference back here
        self.offer = WorkflowTaskOffer(
            dispatch._namespace, dispatch._task_queue, dispatch._owner, self._slots.accept
        )

    def settle(self, granted: list[WorkflowTask] | None) -> None:
        """After the transaction (``granted`` None: it did not commit): run the tasks it
        leased to this worker; release the slots reserved either way."""
        slots = self._slots.release()
        for task in granted or ():
            slots.launch(self._workflows.process(task))


class _FiredSlots:
    """The workflow task slots a fired ticket reserved, by every run of its transaction."""

    __slots__ = ("_reserved", "_slots", "_workflows")

    def __init__(self, slots: Slots, workflows: WorkflowTasks) -> None:
        self._slots = slots
        self._workflows = workflows
        self._reserved = 0

    def accept(self, run_id: str, workflow_type: str) -> bool:
        if not self._workflows.runs_type(workflow_type) or self._slots.free() <= 0:
            return False
        self._slots.reserved += 1
        self._reserved += 1
        return True

    def release(self) -> Slots:
        self._slots.release(self._reserved)
        self._reserved = 0
        return self._slots


class _InCommit:
    """Runs, inside the transaction of an operation (an activity's result, a start), the
    workflow task it hands back (see ``perdure._store._eager.InCommit``)."""

    def __init__(
        self,
        dispatch: EagerDispatch,
        workflows: WorkflowTasks,
        slot: _Reservation,
        *,
        start: bool,
    ) -> None:
        self._dispatch = dispatch
        self._wf = workflows
        self._slot = slot
        self._start = start  # the first task of a run being started: no instance to reuse
        self.identity = workflows.identity
        self._calls = 0
        self._runner: WorkflowRunner | None = None
        self._task: WorkflowTask | None = None
        self._offer: ActivityOffer | None = None
        # For the metrics: when the task began, whether its instance was cached, and how it
        # closes the run.
        self._started = 0.0
        self._cached = False
        self._closes: WorkflowClose | None = None
        self._awaiting = False  # its commands schedule activities this worker runs

    def __call__(self, task: WorkflowTask) -> tuple[list[Command], ActivityOffer | None] | None:
        self._calls += 1
        if self._calls > 1:  # the operation runs again: what the first run did is undone
            self._spoil()
            return None
        return self._run(task)

    def _run(self, task: WorkflowTask) -> tuple[list[Command], ActivityOffer | None] | None:
        """Run ``task`` if the run is cached (or being started) and the task brought all the
        events it lacks: its commands, or None to run it after the commit."""
        wf = self._wf
        defn = wf.definition(task.workflow_type)
        if defn is None or task.updates_requested:
            return None
        runner = wf.cache.get(task.run_id)
        self._cached = runner is not None
        if runner is None:
            if not self._start:
                return None
            runner = wf.new_runner(defn, task.workflow_id, task.run_id)
        events = handed_over(task, runner.next_event_id)
        if events is None:
            return None
        wf.take(task.run_id)  # this transaction's now: dropped unless it commits
        wf.warn_if_large(task)
        self._started = time.perf_counter()
        commands: list[Command] | None
        try:
            commands = runner.apply(
                events, task_time=task.started_time, history_size=task.history_size, updates=[]
            )
            check_command_payloads(commands, task.workflow_type)
        except (WorkflowTaskFailure, PayloadSizeError):
            commands = None  # run again after the commit, by replay, and failed there
        if commands is None or not all(isinstance(c, _IN_COMMIT) for c in commands):
            runner.dispose()  # run after the commit, by replay, as usual
            return None
        self._runner, self._task = runner, task
        self._closes = closing(commands) if wf.metrics is not None else None
        own = self._dispatch._schedules_own(commands)
        self._awaiting = own > 0
        if self._awaiting:  # kept awaiting its result: no room for a new run (a run that
            wf.instances_pending += 1  # waits on a timer, say, is evictable once kept)
        self._offer = self._dispatch._offer_activities(own)
        self._slot.ran()
        return commands, self._offer

    def _spoil(self) -> None:
        """Forget what ran: the instance is dropped (rebuilt by replay), the offer released."""
        self._forget_instance()
        self._dispatch._settle_activities(self._offer, None)
        self._offer = None

    async def finish(self, handed: EagerWorkflowTask | None) -> bool:
        """After the operation: whether the task was dealt with in its commit (else the
        worker runs the task it was granted as usual)."""
        runner, task, offer = self._runner, self._task, self._offer
        if runner is None or task is None:
            return False
        if handed is None or handed.continued is None:
            # Not committed: the task was granted again by the operation's next run, or not
            # at all. Refused (inputs arrived as it closed): it was scheduled afresh.
            self._spoil()
            return handed is not None
        self._offer = None
        metrics = self._wf.metrics
        if metrics is not None:
            report_task(metrics, task, runner, self._started, self._cached, self._closes)
        try:
            await self._dispatch._recorded(
                task, runner, handed.continued, offer, handed.activities, self._awaiting
            )
        finally:
            self._forget_instance()
        return True

    def _forget_instance(self) -> None:
        runner, task = self._runner, self._task
        if runner is not None and task is not None:
            if self._awaiting:
                self._wf.instances_pending -= 1
            self._wf.let_go(task.run_id, runner)  # unless cached for the run's next task
        self._runner = self._task = None
