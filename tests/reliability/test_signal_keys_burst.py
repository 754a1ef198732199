"""Signals (RELIABILITY.md section 10), CI tier, on SQLite and PostgreSQL: concurrent senders
with idempotency keys, some sends repeated with their key and some failing as a lost reply
does (committed, then an error), the only worker SIGKILLed in the middle of the burst.

History must hold each distinct signal exactly once (none lost, none twice), in an order
that respects acceptance (a signal whose send returned before another's began comes first;
each sender's in the order it sent them), and the workflow's handler must have seen them in
that order. The 10,000-signal form is the long tier's (``benchmarks/torture.py``).

At the plan's size (50 senders x 200 signals to one workflow, 3 worker kills), outside the
suite: ``PERDURE_SIGNAL_BURST=50x200x3 pytest tests/reliability/test_signal_keys_burst.py
-k burst -n 0`` (senders x signals each x kills).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import rerun_hint
from harness.faults import FaultPlan, InjectedFault, inject
from harness.signal_app import TASK_QUEUE, TASK_TIMEOUT, SignalSink
from harness.workers import Workers

from perdure import Client
from perdure.client import WorkflowHandle, WorkflowNotFoundError

SENDERS, PER_SENDER, KILLS = (
    int(n) for n in os.environ.get("PERDURE_SIGNAL_BURST", "5x20x1").split("x")
)
pytestmark = [pytest.mark.realtime, pytest.mark.timeout(150 + SENDERS * PER_SENDER // 10)]

REPEAT_RATE = 0.1  # the share of sends sent again, with their key, once they returned
FAULT_RATE = 0.05  # the share of sends that fail: before reaching the store, or after commit
DRAIN_S = 90.0 + SENDERS * PER_SENDER / 100


@dataclass
class Send:
    """One distinct signal: its value, key and when its first send began and first returned
    (the store accepted it somewhere in between)."""

    value: str
    key: str
    sender: int
    began: float = 0.0
    returned: float = 0.0


async def send(handle: WorkflowHandle[Any], item: Send) -> int:
    """Send until a call returns, as a client retries after an error; the calls made."""
    calls = 0
    while True:
        calls += 1
        try:
            await handle.signal(SignalSink.add, item.value, request_id=item.key)
            return calls
        except InjectedFault:
            await asyncio.sleep(0)


@dataclass
class Burst:
    """The senders' shared record: the calls each send took, and the middle of the burst."""

    total: int
    calls: list[int]
    progress: asyncio.Event  # set at each send: the kills are spread over the burst


async def sender(
    handle: WorkflowHandle[Any], items: list[Send], rng: random.Random, burst: Burst
) -> None:
    for item in items:
        item.began = time.monotonic()
        burst.calls.append(await send(handle, item))
        item.returned = time.monotonic()
        if rng.random() < REPEAT_RATE:  # the client was not sure: it sends it again
            burst.calls.append(await send(handle, item))
        burst.progress.set()
        await asyncio.sleep(rng.random() * 0.01)


def order_problems(history: list[str], sends: dict[str, Send]) -> list[str]:
    """Where history's order contradicts what the senders saw: a signal recorded after one
    whose send began only once the first's had returned; a sender's signals out of order."""
    problems = []
    # The smallest `returned` among the signals recorded at or after each position.
    later_min = [float("inf")] * (len(history) + 1)
    for i in range(len(history) - 1, -1, -1):
        later_min[i] = min(later_min[i + 1], sends[history[i]].returned)
    for i, value in enumerate(history):
        if later_min[i + 1] < sends[value].began:
            problems.append(f"{value} (position {i}) recorded after a signal sent after it")
    by_sender: dict[int, list[str]] = {}
    for value in history:
        by_sender.setdefault(sends[value].sender, []).append(value)
    for s, values in by_sender.items():
        expected = [v.value for v in sends.values() if v.sender == s]
        if values != expected:
            problems.append(f"sender {s}'s signals out of order: {values[:5]}...")
    return problems


async def signal_events(handle: WorkflowHandle[Any]) -> list[dict[str, Any]]:
    events = (await handle.fetch_history()).events
    return [e.attributes for e in events if e.event_type == "WorkflowExecutionSignaled"]


async def test_signal_burst_with_repeats_faults_and_a_worker_kill(
    db_url: str, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    workers = Workers(tmp_path, db_url, str(tmp_path / "unused-ledger"))
    client = await Client.connect(db_url)
    plan = FaultPlan(
        seed, FAULT_RATE, kinds=("before", "after"), methods=("signal",), first=("before", "after")
    )
    inject(client.store, plan)
    try:
        first = workers.spawn("w0", module="harness.signal_app")
        wid = f"burst-{uuid.uuid4().hex[:8]}"
        total = SENDERS * PER_SENDER
        handle = await client.start_workflow(
            SignalSink.run, total, id=wid, task_queue=TASK_QUEUE, task_timeout=TASK_TIMEOUT
        )
        await _until_worked(handle, first.pid)
        tag = uuid.uuid4().hex[:6]
        items = {
            s: [Send(f"s{s}-{k}", f"key-{s}-{k}-{tag}", s) for k in range(PER_SENDER)]
            for s in range(SENDERS)
        }
        sends = {item.value: item for batch in items.values() for item in batch}
        burst = Burst(total, [], asyncio.Event())
        tasks = [
            asyncio.create_task(sender(handle, items[s], random.Random(rng.random()), burst))
            for s in range(SENDERS)
        ]
        for k in range(KILLS):  # the only worker dies at 1/(KILLS+1), 2/(KILLS+1)... of it
            while len(burst.calls) < total * (k + 1) // (KILLS + 1):
                burst.progress.clear()
                await burst.progress.wait()
            workers.kill(f"w{k}")
            if k < KILLS - 1:  # the next one takes over at once, to be killed in its turn
                workers.spawn(f"w{k + 1}", module="harness.signal_app")
        await asyncio.gather(*tasks)
        workers.spawn(f"w{KILLS}", module="harness.signal_app")
        result = await asyncio.wait_for(handle.result(), DRAIN_S)
        plan.rate = 0.0  # the checks read the store without faults

        events = await signal_events(handle)
        history = [(await client.data_converter.decode(e["input"]))[0] for e in events]
        hint = (rerun_hint(seed), dict(plan.injected), workers.logs())
        assert sorted(history) == sorted(sends), hint  # each distinct signal, exactly once
        assert [e["request_id"] for e in events] == [sends[v].key for v in history], hint
        assert order_problems(history, sends) == [], hint
        assert result == history, hint  # the handler saw them in history's order
        # The run tested something: sends were repeated, faults lost replies after commit,
        # and the killed worker had handled part of the burst.
        assert sum(burst.calls) > total, hint
        assert plan.injected[("signal", "after")] >= 1, hint
        assert first.pid in workers.killed_pids
        assert workers.dead() == [], workers.logs()

        # Signals to the closed workflow: a new one is refused with a typed error; the retry
        # of one it took is accepted and records nothing.
        with pytest.raises(WorkflowNotFoundError, match="already closed"):
            await handle.signal(SignalSink.add, "late", request_id="late-key")
        await handle.signal(SignalSink.add, "s0-0", request_id=sends["s0-0"].key)
        assert len(await signal_events(handle)) == total
    finally:
        workers.stop_all()
        await client.close()


async def test_two_clients_racing_with_the_same_keys(db_url: str, seed: int) -> None:
    """Two clients (each its own store, connections and transactions) send the same keyed
    signals at once: each is recorded once."""
    rng = random.Random(seed)
    a = await Client.connect(db_url)
    b = await Client.connect(db_url)
    try:
        wid = f"race-{uuid.uuid4().hex[:8]}"
        await a.start_workflow(SignalSink.run, 1_000, id=wid, task_queue=TASK_QUEUE)
        keys = [f"k{i}" for i in range(30)]

        async def sends(client: Client, order: list[str]) -> None:
            handle = client.get_workflow_handle(wid)
            for key in order:
                await handle.signal(SignalSink.add, key, request_id=key)

        await asyncio.gather(
            sends(a, rng.sample(keys, len(keys))), sends(b, rng.sample(keys, len(keys)))
        )
        events = await signal_events(a.get_workflow_handle(wid))
        assert sorted(e["request_id"] for e in events) == sorted(keys), rerun_hint(seed)
    finally:
        await a.close()
        await b.close()


async def _until_worked(handle: WorkflowHandle[Any], pid: int) -> None:
    """Wait until the worker ``pid`` completed the run's first workflow task."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events = (await handle.fetch_history()).events
        if any(
            e.event_type == "WorkflowTaskCompleted"
            and str(pid) in str(e.attributes.get("identity", ""))
            for e in events
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the worker did not take the workflow's first task")
