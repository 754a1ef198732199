"""The Hypothesis stateful model (RELIABILITY.md section 6), CI tier.

Random sequences of starts, signals (each an instruction: run an activity, sleep on a
durable timer), finishes, cancellations, clock jumps, worker restarts (a restart drops
the worker's cache: the next task replays) and worker deaths run against perdure on the
time-skipping environment.

A death is a SIGKILL's: the worker dies in the middle of an activity (it ran, its result not
yet recorded) and the store is told nothing; a fresh worker takes over. The dead worker's
lease holds until ``expire_leases`` runs it out by advancing the clock explicitly past it
(the time-skipping clock stands still while a task is held, so it never would by itself);
``deliver_stale_completion`` then lets the dead worker's frozen attempt report after all,
as a paused process that wakes: before the lease ran out it is recorded, after it the fence
refuses it. After every step the history auditor checks every run (contiguous event ids,
at most one terminal event, each activity and timer closed at most once, no timer fired
before its time) and the signals in history equal those sent, in order. At the end every
open workflow is finished and its result must equal what a plain-Python model of the same
instructions gives. Hypothesis shrinks a failure to a minimal sequence of steps.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from harness import seed
from harness.auditor import audit
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from perdure import activity, workflow
from perdure.client import WorkflowExecutionStatus, WorkflowFailureError
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker

QUEUE = "model"
IDS = ("m-0", "m-1", "m-2")
ACTIVITY_TIMEOUT = 30.0
# At most how long (real seconds) a death waits for its workflow's activity to get there.
DEATH_WAIT_S = 5.0


@activity.defn
async def double(value: int) -> int:
    return value * 2


@workflow.defn
class Model:
    """Runs the instructions it is signalled, in order, until told to finish."""

    def __init__(self) -> None:
        self.queue: list[list[Any]] = []
        self.log: list[Any] = []

    @workflow.signal
    def instruct(self, op: list[Any]) -> None:
        self.queue.append(op)

    @workflow.run
    async def run(self) -> list[Any]:
        while True:
            await workflow.wait_condition(lambda: bool(self.queue))
            op = self.queue.pop(0)
            if op[0] == "act":
                self.log.append(
                    await workflow.execute_activity(
                        double,
                        op[1],
                        start_to_close_timeout=timedelta(seconds=ACTIVITY_TIMEOUT),
                    )
                )
            elif op[0] == "sleep":
                await workflow.sleep(op[1])
                self.log.append(f"slept {op[1]}")
            else:
                return self.log


def expected(ops: list[list[Any]]) -> list[Any]:
    out: list[Any] = []
    for op in ops:
        if op[0] == "act":
            out.append(op[1] * 2)
        elif op[0] == "sleep":
            out.append(f"slept {op[1]}")
        else:
            return out
    return out


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
        self.env: WorkflowEnvironment = self.run(WorkflowEnvironment.start_time_skipping())
        self.worker: Worker | None = None
        self.worker_task: asyncio.Task[None] | None = None
        # The workflow whose next activity kills its worker, and the attempt that killed.
        self.doomed: str | None = None
        self.frozen: Frozen | None = None
        self.dead: list[tuple[Worker, asyncio.Task[None]]] = []
        self.died = asyncio.Event()
        self.start_worker()
        # workflow id -> the instructions sent to its current run, and whether it is open
        self.sent: dict[str, list[list[Any]]] = {}
        self.open: dict[str, bool] = {}
        self.cancelled: set[str] = set()

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
        if self.open.get(wid):
            return
        self.run(self.env.client.start_workflow(Model.run, id=wid, task_queue=QUEUE))
        self.sent[wid], self.open[wid] = [], True
        self.cancelled.discard(wid)

    @rule(wid=st.sampled_from(IDS), op=st.sampled_from(["act", "sleep"]), n=st.integers(1, 50))
    def instruct(self, wid: str, op: str, n: int) -> None:
        if not self.open.get(wid) or wid in self.cancelled:
            return
        self.run(self.env.client.get_workflow_handle(wid).signal(Model.instruct, [op, n]))
        self.sent[wid].append([op, n])

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

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def histories_are_sound(self) -> None:
        for wid in self.sent:
            handle = self.env.client.get_workflow_handle(wid)
            events = list(self.run(handle.fetch_history()).events)
            assert audit(wid, events) == []
            signals = [
                e.attributes for e in events if str(e.event_type) == "WorkflowExecutionSignaled"
            ]
            assert len(signals) <= len(self.sent[wid])

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
                elif wid in self.cancelled:
                    with contextlib.suppress(WorkflowFailureError):
                        self.run(handle.result())
                    status = self.run(handle.describe()).status
                    assert status in (
                        WorkflowExecutionStatus.CANCELED,
                        WorkflowExecutionStatus.COMPLETED,
                    )
                events = list(self.run(handle.fetch_history()).events)
                assert audit(wid, events, closed=True) == []
                signals = [e for e in events if str(e.event_type) == "WorkflowExecutionSignaled"]
                if wid not in self.cancelled:  # every signal reached the run, in order
                    assert len(signals) == len(self.sent[wid])
        finally:
            if self.worker is not None:
                self.run(self.worker.shutdown())
            for _, task in self.dead:
                self.run(asyncio.gather(task, return_exceptions=True))
            self.run(self.env.shutdown())
            self.loop.close()


EngineModel.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=15,
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


_ = seed  # the harness's PERDURE_SEED applies to the other tests; Hypothesis prints its own
