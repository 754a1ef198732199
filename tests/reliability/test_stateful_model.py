"""The Hypothesis stateful model (RELIABILITY.md section 6), CI tier.

Random sequences of starts, signals (each an instruction: run an activity, sleep on a
durable timer), finishes, cancellations, clock jumps and worker restarts (a restart drops
the worker's cache: the next task replays) run against perdure on the time-skipping
environment. After every step the history auditor checks every run (contiguous event ids,
at most one terminal event, each activity and timer closed at most once, no timer fired
before its time) and the signals in history equal those sent, in order. At the end every
open workflow is finished and its result must equal what a plain-Python model of the same
instructions gives. Hypothesis shrinks a failure to a minimal sequence of steps.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

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
                        double, op[1], start_to_close_timeout=timedelta(seconds=30)
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


class EngineModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.env: WorkflowEnvironment = self.run(WorkflowEnvironment.start_time_skipping())
        self.worker: Worker | None = None
        self.worker_task: asyncio.Task[None] | None = None
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
        self.worker_task = self.loop.create_task(self.worker.run())

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

    @rule(seconds=st.sampled_from([0.5, 5, 30, 120]))
    def advance_clock(self, seconds: float) -> None:
        self.run(self.env.sleep(seconds))

    @precondition(lambda self: self.worker is not None)
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
_ = seed  # the harness's PERDURE_SEED applies to the other tests; Hypothesis prints its own
