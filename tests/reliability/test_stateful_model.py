"""The Hypothesis stateful model (RELIABILITY.md section 6), CI tier.

Random sequences of starts, signals (each an instruction: run an activity, sleep on a
durable timer, continue as new), finishes, cancellations, clock jumps, worker restarts (a
restart drops the worker's cache: the next task replays), store restarts and worker deaths
run against perdure on the time-skipping environment, its store a SQLite file.

Some instructions carry an idempotency key (``request_id``), and ``resend`` sends one of
them again with its key, as a client whose reply was lost would: whenever, to the run
that took it, to a later run of the chain, once the chain closed, or to the id's next
chain; keys are the workflow id's, so it is accepted and records nothing. ``can`` makes the
workflow continue as new carrying its log and the instructions it has not run yet, so the
model's result goes on as if it had not. ``restart_store`` stops the worker, closes the
store and opens the same file again (the clock where it was), and a fresh worker goes on.

A death is a SIGKILL's: the worker dies in the middle of an activity (it ran, its result not
yet recorded) and the store is told nothing; a fresh worker takes over. The dead worker's
lease holds until ``expire_leases`` runs it out by advancing the clock explicitly past it
(the time-skipping clock stands still while a task is held, so it never would by itself);
``deliver_stale_completion`` then lets the dead worker's frozen attempt report after all,
as a paused process that wakes: before the lease ran out it is recorded, after it the fence
refuses it. After every step the history auditor checks every run (contiguous event ids,
at most one terminal event, each activity and timer closed at most once, no timer fired
before its time; a continued run closed once, with ContinuedAsNew); at most one run of an
id is open; the signals in a chain's runs are those sent, in order, each once; and each key
is in the id's histories at most once. A chain that closes (finished, cancelled, or at the
end, when every open one is finished) must hold every instruction and every key sent to
it, once, have continued as new once per ``can`` it ran, and return what a plain-Python
model of the same instructions gives. Hypothesis shrinks a failure to a minimal sequence of
steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness import seed
from harness.auditor import TERMINAL, audit
from harness.model_app import ACTIVITY_TIMEOUT, Model, double, event_type_of, expected
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from perdure.client import WorkflowExecutionStatus, WorkflowFailureError
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker

QUEUE = "model"
IDS = ("m-0", "m-1", "m-2")
TMPFS = "/dev/shm" if os.path.isdir("/dev/shm") else None
# At most how long (real seconds) a death waits for its workflow's activity to get there.
DEATH_WAIT_S = 5.0


@dataclass
class Frozen:
    """A dead worker's activity attempt: it ran, its result unreported, its lease held."""

    workflow_id: str
    release: asyncio.Event = field(default_factory=asyncio.Event)
    reported: asyncio.Event = field(default_factory=asyncio.Event)
    expired: bool = False


class EngineModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        # A file, not memory: ``restart_store`` closes the store and opens the file again.
        # On tmpfs where there is one: the file must outlive its store, not the machine,
        # and each commit's fsync is then free.
        self.directory = tempfile.TemporaryDirectory(prefix="perdure-model-", dir=TMPFS)
        self.url = f"sqlite:///{self.directory.name}/model.db"
        self.env: WorkflowEnvironment = self.run(
            WorkflowEnvironment.start_time_skipping(url=self.url)
        )
        self.worker: Worker | None = None
        self.worker_task: asyncio.Task[None] | None = None
        # The workflow whose next activity kills its worker, and the attempt that killed.
        self.doomed: str | None = None
        self.frozen: Frozen | None = None
        self.dead: list[tuple[Worker, asyncio.Task[None]]] = []
        self.died = asyncio.Event()
        self.start_worker()
        # workflow id -> the instructions sent to its current chain of runs (continued as
        # new from its first), each once (a retried key's is not sent again), and whether
        # the chain is open
        self.sent: dict[str, list[list[Any]]] = {}
        self.open: dict[str, bool] = {}
        self.cancelled: set[str] = set()
        self.first_run: dict[str, str] = {}
        # workflow id -> the idempotency keys it was sent (by any chain), with their
        # instruction; every run it had; the histories of closed runs (which stay as they are)
        self.keys: dict[str, list[tuple[str, list[Any]]]] = {}
        self.runs: dict[str, set[str]] = {}
        self.closed_histories: dict[str, list[Any]] = {}
        self.next_key = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 60))

    def start_worker(self) -> None:
        self.worker = Worker(
            self.env.client, task_queue=QUEUE, workflows=[Model], activities=[double]
        )
        self.worker._set_crash_hook(self._death)
        self.worker_task = self.loop.create_task(self.worker.run())

    async def _death(self, point: str, subject: Any, task: Any) -> None:
        """The worker's crash hook: if its workflow is doomed, the worker dies here (before
        the activity's result is recorded) without telling the store, a fresh one starts,
        and this attempt stays frozen until ``deliver_stale_completion`` releases it."""
        if point != "before_activity_completes" or self.doomed != task.token.workflow_id:
            return
        self.doomed = None
        frozen = self.frozen = Frozen(task.token.workflow_id)
        self.died.set()
        assert self.worker is not None and self.worker_task is not None
        dead = self.worker
        self.dead.append((dead, self.worker_task))
        self.start_worker()
        self.loop.create_task(dead._die(leases_expire=False))
        while not frozen.release.is_set():
            # _die cancels the attempt's task: a killed process does not get to say anything.
            with contextlib.suppress(asyncio.CancelledError):
                await frozen.release.wait()
        self.loop.call_soon(frozen.reported.set)  # the report follows this hook at once

    def settled(self) -> bool:
        """No dead worker holds a lease: waiting for the clock to move cannot stall."""
        return self.frozen is None or self.frozen.expired

    # -- rules ---------------------------------------------------------------------------
    @rule(wid=st.sampled_from(IDS))
    def start(self, wid: str) -> None:
        """A new chain of runs for ``wid`` (one cancelled before is waited for first, when
        waiting cannot stall)."""
        if wid in self.cancelled and self.open.get(wid) and self.settled():
            self._close_cancelled(wid)
        if self.open.get(wid):
            return
        handle = self.run(self.env.client.start_workflow(Model.run, id=wid, task_queue=QUEUE))
        assert handle.first_execution_run_id is not None
        self.sent[wid], self.open[wid] = [], True
        self.first_run[wid] = handle.first_execution_run_id
        self.cancelled.discard(wid)

    @rule(
        wid=st.sampled_from(IDS),
        op=st.sampled_from(["act", "sleep"]),
        n=st.integers(1, 50),
        keyed=st.booleans(),
    )
    def instruct(self, wid: str, op: str, n: int, keyed: bool) -> None:
        """An instruction (to a new run if ``wid`` has none open), ``keyed`` with an
        idempotency key of its own."""
        self.start(wid)
        if not self.open.get(wid) or wid in self.cancelled:
            return
        key = None
        if keyed:
            key, self.next_key = f"{wid}/key-{self.next_key}", self.next_key + 1
            self.keys.setdefault(wid, []).append((key, [op, n]))
        handle = self.env.client.get_workflow_handle(wid)
        self.run(handle.signal(Model.instruct, [op, n], request_id=key))
        self.sent[wid].append([op, n])

    @rule(wid=st.sampled_from(IDS), pick=st.integers(1, 4))
    def resend(self, wid: str, pick: int) -> None:
        """A keyed instruction sent before, sent again with its key, as by a client whose
        reply was lost: accepted and recorded nothing, whichever run of the id took it
        (keys are the workflow id's: across continue-as-new, new runs, closed runs)."""
        keys = self.keys.get(wid)
        if not keys:
            return
        key, instruction = keys[-pick % len(keys)]
        handle = self.env.client.get_workflow_handle(wid)
        self.run(handle.signal(Model.instruct, instruction, request_id=key))

    @rule(wid=st.sampled_from(IDS))
    def continue_as_new(self, wid: str) -> None:
        """The workflow continues as new, carrying its log and the instructions it has not
        run yet: the model's result goes on as if it had not."""
        self.start(wid)
        if not self.open.get(wid) or wid in self.cancelled:
            return
        self.run(self.env.client.get_workflow_handle(wid).signal(Model.instruct, ["can", 0]))
        self.sent[wid].append(["can", 0])

    @precondition(lambda self: self.frozen is None)
    @rule(wid=st.sampled_from(IDS), n=st.integers(1, 50))
    def kill_worker_mid_activity(self, wid: str, n: int) -> None:
        """An activity for ``wid``; its worker dies once it ran it, before recording it
        (unless the workflow is still asleep on a timer, which no clock moves meanwhile)."""
        if wid in self.cancelled:
            return
        self.start(wid)  # if it is not running yet: a death needs a workflow to die in
        self.doomed = wid
        self.died = asyncio.Event()
        self.run(self.env.client.get_workflow_handle(wid).signal(Model.instruct, ["act", n]))
        self.sent[wid].append(["act", n])
        self.run(self._until_dead_or_idle())
        self.doomed = None

    async def _until_dead_or_idle(self) -> None:
        """Until the doomed worker died, or nothing is left to run (the workflow sleeps on
        a timer, which no clock moves now: the activity stays an ordinary one)."""
        store = self.env.client.store
        deadline = self.loop.time() + DEATH_WAIT_S
        while not self.died.is_set() and self.loop.time() < deadline:
            if await store.is_idle():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.died.wait(), 0.005)

    @precondition(lambda self: self.frozen is not None and not self.frozen.expired)
    @rule()
    def expire_leases(self) -> None:
        """Run the dead worker's lease out: the clock jumps past the attempt's
        start-to-close timeout (and the workflow tasks' leases)."""
        assert self.frozen is not None
        clock = self.env.client.store.clock
        clock.advance_to(clock.now() + ACTIVITY_TIMEOUT + 1)  # type: ignore[attr-defined]
        self.frozen.expired = True
        self.run(self.env.sleep(0))

    @precondition(lambda self: self.frozen is not None)
    @rule()
    def deliver_stale_completion(self) -> None:
        """The dead worker's attempt reports after all: recorded if its lease still held,
        refused by the fence if it ran out (in both cases, once in history)."""
        frozen = self.frozen
        assert frozen is not None
        frozen.release.set()
        self.run(frozen.reported.wait())
        self.frozen = None
        self.run(self.env.sleep(0))

    @precondition(lambda self: self.settled())
    @rule(wid=st.sampled_from(IDS))
    def finish(self, wid: str) -> None:
        if not self.open.get(wid) or wid in self.cancelled:
            return
        handle = self.env.client.get_workflow_handle(wid)
        self.run(handle.signal(Model.instruct, ["finish", 0]))
        self.sent[wid].append(["finish", 0])
        assert self.run(handle.result()) == expected(self.sent[wid])
        self.open[wid] = False
        self.run(self._check_histories(final=True, only=wid))

    @rule(wid=st.sampled_from(IDS))
    def cancel(self, wid: str) -> None:
        if not self.open.get(wid) or wid in self.cancelled:
            return
        self.run(self.env.client.get_workflow_handle(wid).cancel())
        self.cancelled.add(wid)

    @precondition(lambda self: self.settled())
    @rule(seconds=st.sampled_from([0.5, 5, 30, 120]))
    def advance_clock(self, seconds: float) -> None:
        self.run(self.env.sleep(seconds))

    @precondition(lambda self: self.worker is not None and self.settled())
    @rule()
    def restart_worker(self) -> None:
        assert self.worker is not None and self.worker_task is not None
        self.run(self.worker.shutdown())
        self.run(self.worker_task)
        self.start_worker()

    @precondition(lambda self: self.frozen is None)
    @rule()
    def restart_store(self) -> None:
        """The store is closed (its worker stopped first) and the file opened again, the
        clock where it was; a fresh worker goes on from what the file holds."""
        assert self.worker is not None and self.worker_task is not None
        self.run(self.worker.shutdown())
        self.run(self.worker_task)
        for _, task in self.dead:
            self.run(asyncio.gather(task, return_exceptions=True))
        self.dead.clear()
        now = self.env.client.store.clock.now()
        self.run(self.env.shutdown())
        # Not a hair earlier (a datetime holds microseconds): the latest run of an id is the
        # one that started last, and a run started before the restart must not seem later.
        start = datetime.fromtimestamp(now, UTC)
        if start.timestamp() < now:
            start += timedelta(microseconds=1)
        self.env = self.run(WorkflowEnvironment.start_time_skipping(url=self.url, start_time=start))
        self.start_worker()

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def histories_are_sound(self) -> None:
        self.run(self._check_histories(final=False))

    async def _check_histories(self, *, final: bool, only: str | None = None) -> None:
        """Every run audits; at most one run of an id is open; each chain's signals are the
        instructions sent to it, in order, each once (all of them once it is ``final``:
        closed); each idempotency key is in the id's histories at most once (once
        ``final``); a ``final`` chain continued as new once per ``can``."""
        client = self.env.client
        running = Counter(
            [e.id async for e in client.list_workflows("ExecutionStatus = 'Running'")]
        )
        assert [wid for wid, n in running.items() if n > 1] == [], running
        for wid in [only] if only else list(self.sent):
            chain = await self._chain(wid)
            for i, (run_id, events) in enumerate(chain):
                closed = True if final or i < len(chain) - 1 else None
                assert audit(f"{wid} run {run_id}", events, closed=closed) == []
            signalled = [
                await self._instruction(e)
                for _, events in chain
                for e in events
                if event_type_of(e) == "WorkflowExecutionSignaled"
            ]
            sent = self.sent[wid]
            assert signalled == sent[: len(signalled)], (signalled, sent)
            keys: Counter[str] = Counter()
            for run_id in self.runs[wid]:
                keys.update(
                    e.attributes["request_id"]
                    for e in await self._history(wid, run_id)
                    if event_type_of(e) == "WorkflowExecutionSignaled"
                    and e.attributes.get("request_id")
                )
            assert [k for k, n in keys.items() if n > 1] == [], keys
            if final:
                assert signalled == sent
                cans = sum(1 for op in sent if op[0] == "can")
                # (A cancelled chain may have ended before it ran them all.)
                continued = len(chain) - 1
                assert continued <= cans if wid in self.cancelled else continued == cans
                assert set(keys) == {k for k, _ in self.keys.get(wid, [])}

    async def _chain(self, wid: str) -> list[tuple[str, list[Any]]]:
        """The runs of ``wid``'s current chain, from its first through each one it
        continued as new into, with their histories."""
        chain: list[tuple[str, list[Any]]] = []
        run_id: str | None = self.first_run[wid]
        while run_id is not None:
            events = await self._history(wid, run_id)
            chain.append((run_id, events))
            last = events[-1] if events else None
            run_id = None
            if last is not None and event_type_of(last) == "WorkflowExecutionContinuedAsNew":
                run_id = str(last.attributes["new_run_id"])
        return chain

    async def _history(self, wid: str, run_id: str) -> list[Any]:
        self.runs.setdefault(wid, set()).add(run_id)
        if run_id in self.closed_histories:
            return self.closed_histories[run_id]
        handle = self.env.client.get_workflow_handle(wid, run_id=run_id)
        events = list((await handle.fetch_history()).events)
        if events and event_type_of(events[-1]) in TERMINAL:
            self.closed_histories[run_id] = events
        return events

    async def _instruction(self, event: Any) -> Any:
        values = await self.env.client.data_converter.decode(list(event.attributes["input"]))
        return values[0]

    def _close_cancelled(self, wid: str) -> None:
        """Wait until the chain asked to cancel closed: cancelled (or completed, when it
        was told to finish first)."""
        handle = self.env.client.get_workflow_handle(wid)
        with contextlib.suppress(WorkflowFailureError):
            self.run(handle.result())
        status = self.run(handle.describe()).status
        assert status in (WorkflowExecutionStatus.CANCELED, WorkflowExecutionStatus.COMPLETED)
        self.open[wid] = False
        self.run(self._check_histories(final=True, only=wid))

    def teardown(self) -> None:
        try:
            if self.frozen is not None:
                if not self.frozen.expired:
                    self.expire_leases()
                self.deliver_stale_completion()
            client = self.env.client
            for wid, is_open in self.open.items():
                handle = client.get_workflow_handle(wid)
                if is_open and wid not in self.cancelled:
                    self.run(handle.signal(Model.instruct, ["finish", 0]))
                    self.sent[wid].append(["finish", 0])
                    assert self.run(handle.result()) == expected(self.sent[wid])
                elif wid in self.cancelled and is_open:
                    self._close_cancelled(wid)
            self.run(self._check_histories(final=True))
        finally:
            if self.worker is not None:
                self.run(self.worker.shutdown())
            for _, task in self.dead:
                self.run(asyncio.gather(task, return_exceptions=True))
            self.run(self.env.shutdown())
            self.loop.close()
            self.directory.cleanup()


# The CI tier's size; the plan's larger runs (its PR tier 200x40, its nightly 5,000
# examples) outside the suite: PERDURE_MODEL=5000x40 pytest tests/reliability/... -n 0.
EXAMPLES, STEPS = (int(n) for n in os.environ.get("PERDURE_MODEL", "40x15").split("x"))
EngineModel.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=False,
    database=None,
    suppress_health_check=list(HealthCheck),
)
TestEngineModel = EngineModel.TestCase


def _started_attempts(model: EngineModel, wid: str) -> list[int]:
    events = model.run(model.env.client.get_workflow_handle(wid).fetch_history()).events
    return [e.attributes["attempt"] for e in events if str(e.event_type) == "ActivityTaskStarted"]


@pytest.mark.parametrize("expire_first", [True, False])
def test_dead_workers_late_completion(expire_first: bool) -> None:
    """The model's death rules, in a fixed order: the worker dies mid-activity and the run
    waits on its lease; run out (``expire_first``), the attempt is retried and the dead
    worker's late report is refused by the fence (history records attempt 2 only); not run
    out, the late report is recorded (attempt 1), nothing retried. Either way the activity
    is completed once and the workflow returns the model's result."""
    model = EngineModel()
    try:
        model.start("m-0")
        model.kill_worker_mid_activity("m-0", 7)
        assert model.frozen is not None, "the worker did not die mid-activity"
        model.histories_are_sound()
        if expire_first:
            model.expire_leases()
            model.histories_are_sound()
        model.deliver_stale_completion()
        model.histories_are_sound()
        model.finish("m-0")
        assert _started_attempts(model, "m-0") == ([2] if expire_first else [1])
    finally:
        model.teardown()


def _keys_in_history(model: EngineModel, wid: str) -> list[str]:
    return [
        e.attributes["request_id"]
        for run_id in sorted(model.runs[wid])
        for e in model.closed_histories.get(run_id, [])
        if event_type_of(e) == "WorkflowExecutionSignaled" and e.attributes.get("request_id")
    ]


def test_keys_continue_as_new_and_store_restarts() -> None:
    """The rules Hypothesis may draw rarely, in a fixed order: a keyed instruction, sent
    again before and after the run continued as new and the store restarted (the new run
    does not take it again), after the chain closed (accepted, nothing recorded) and to the
    id's next chain (taken by a run of the id already). History holds each key once, and
    the results are the model's."""
    model = EngineModel()
    try:
        model.instruct("m-0", "act", 3, keyed=True)
        model.resend("m-0", 1)
        model.continue_as_new("m-0")
        model.resend("m-0", 1)
        model.restart_store()
        model.instruct("m-0", "sleep", 5, keyed=True)
        model.resend("m-0", 2)
        model.histories_are_sound()
        model.finish("m-0")
        assert model.open["m-0"] is False
        model.resend("m-0", 1)
        model.resend("m-0", 2)
        model.start("m-0")
        model.resend("m-0", 2)
        model.restart_store()
        model.finish("m-0")
        assert sorted(_keys_in_history(model, "m-0")) == ["m-0/key-0", "m-0/key-1"]
        # The first chain: two runs (one continued as new), every instruction once.
        first = [r for r in model.runs["m-0"] if r != model.first_run["m-0"]]
        assert len(first) == 2
    finally:
        model.teardown()


_ = seed  # the harness's PERDURE_SEED applies to the other tests; Hypothesis prints its own
