"""Crash points inside store transactions (RELIABILITY.md sections 1 and 11): a process dies
(``os._exit(137)``, as a SIGKILL would end it) after a transaction's writes and before its
commit, at each named point of ``perdure._store._crash``; it is started again without the
point, and nothing is lost or done twice.

* ``after_lease_claim``, ``before_workflow_task_commit``: a worker running ``Torture``
  workflows (all the torture checks: reference results, the auditor, each activity
  completed once and run at least once, every extra execution by the dead process);
* ``after_timer_claim``: a worker firing ``Sleeper``'s timers: each fires once, never early;
* ``during_signal_append``: the process sending signals to a ``Listener``; restarted, it
  sends the ones it had no acknowledgement for: history holds each value once, in order;
* ``after_child_start_before_record``, ``during_child_completion_delivery``: a worker
  running ``Parent`` workflows: each child started once, closed once, its result seen once.

Each point has its own database and processes (one worker each, so that the point's process
is the one that gets there), all at once; the test asserts every point was hit, so a point
renamed in the engine cannot silently stop being tested. Both stores.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness import app, crashpoints, rerun_hint, scenarios
from harness.auditor import audit, child_problems, signals
from harness.ledger import Ledger
from harness.workers import Workers, check_torture, poll_until, wait_all
from pgutil import fresh_schema

from perdure import Client
from perdure.client import WorkflowExecutionStatus

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(180)]

SIGNALS = 12
TIMERS = 3
CHILDREN = 2


@contextlib.asynccontextmanager
async def databases(
    store: str, tmp_path: Path, names: tuple[str, ...]
) -> AsyncIterator[dict[str, str]]:
    """A database of its own for each name: SQLite files, or PostgreSQL schemas."""
    if store == "sqlite":
        yield {n: f"sqlite:///{tmp_path / f'{n}.db'}" for n in names}
        return
    async with contextlib.AsyncExitStack() as stack:
        yield {n: await stack.enter_async_context(fresh_schema()) for n in names}


class Point:
    """One crash point's run: its database, client, ledger and processes."""

    def __init__(self, point: str, url: str, directory: Path, k: int, hits: str) -> None:
        self.point = point
        self.url = url
        self.k = k
        directory.mkdir()
        self.ledger = Ledger(str(directory / "ledger.db"))
        self.workers = Workers(directory, url, self.ledger.path)
        self.crash_env = {crashpoints.CRASH_AT: f"{point}:{k}", crashpoints.CRASH_HITS: hits}
        self.acks = str(directory / "acks.txt")
        self.client: Client
        self.torture: dict[str, int] = {}
        self.sleepers: dict[str, int] = {}
        self.parents: dict[str, int] = {}
        self.listener = f"{point}-listener"
        self.doomed: Any = None

    async def start(self, rng: random.Random) -> None:
        self.client = await Client.connect(self.url)
        q = app.TASK_QUEUE
        if self.point in ("after_lease_claim", "before_workflow_task_commit"):
            for i in range(3):
                self.torture[f"{self.point}-{i}"] = rng.randrange(1_000_000)
            for wid, value in self.torture.items():
                await app.start(self.client, wid, value, 2)
        elif self.point == "after_timer_claim":
            for i in range(2):
                self.sleepers[f"{self.point}-{i}"] = rng.randrange(1_000_000)
            for wid, value in self.sleepers.items():
                await scenarios.start_sleeper(self.client, wid, value, TIMERS, 0.2, q)
        elif self.point == "during_signal_append":
            await scenarios.start_listener(self.client, self.listener, SIGNALS, q)
        else:
            for i in range(2):
                self.parents[f"{self.point}-{i}"] = rng.randrange(1_000_000)
            for wid, value in self.parents.items():
                await scenarios.start_parent(self.client, wid, value, CHILDREN, q)
        if self.point == "during_signal_append":
            self.workers.spawn("worker")
            self.doomed = self.sender("crash-sender", self.crash_env)
        else:
            self.doomed = self.workers.spawn("crash-worker", env=self.crash_env)

    def sender(self, name: str, env: dict[str, str]) -> Any:
        stream = scenarios.Stream(self.listener, 0, SIGNALS, self.acks)
        return self.workers.spawn_sender(name, [stream], env)

    async def recover(self) -> None:
        """Once the doomed process died at its point, start it again without the point."""
        await poll_until(
            f"the process dies at {self.point}",
            lambda: self.doomed.poll() == crashpoints.EXIT_CODE,
            timeout_s=60,
            logs=self.workers,
        )
        self.workers.kill_times[self.doomed.pid] = time.time()
        if self.point == "during_signal_append":
            again = self.sender("sender", {})
            await poll_until("the sender is done", lambda: again.poll() == 0, 60, self.workers)
        else:
            self.workers.spawn("worker")

    async def check(self) -> list[str]:
        everything = {**self.torture, **self.sleepers, **self.parents}
        if self.point == "during_signal_append":
            everything[self.listener] = 0
        await wait_all(self.client, everything, 60.0, self.workers)
        problems: list[str] = []
        if self.torture:
            report = await check_torture(
                self.client, self.torture, 2, self.ledger, kill_times=self.workers.kill_times
            )
            problems += report.problems()
        for wid, value in self.sleepers.items():
            problems += await self._closed_with(wid, app.reference(value, TIMERS))
        for wid, value in self.parents.items():
            problems += await self._closed_with(wid, scenarios.parent_reference(value, CHILDREN))
            for i in range(1, CHILDREN + 1):
                cid = scenarios.child_id(wid, i)
                runs = [e async for e in self.client.list_workflows(f"WorkflowId = '{cid}'")]
                if len(runs) != 1:
                    problems.append(f"{cid}: {len(runs)} runs, not 1")
                problems += await self._closed_with(cid, scenarios.parent_reference(value, i))
        if self.point == "during_signal_append":
            expected = list(range(SIGNALS))
            problems += await self._closed_with(self.listener, expected)
            history = await self.client.get_workflow_handle(self.listener).fetch_history()
            sent = [await self._decode(p) for p in signals(history.events)]
            if sent != expected:
                problems.append(f"signals in history {sent}, sent {expected}")
            if scenarios.acknowledged(self.acks) != expected:
                problems.append(f"acknowledged {scenarios.acknowledged(self.acks)}")
        return problems

    async def _closed_with(self, wid: str, expected: Any) -> list[str]:
        handle = self.client.get_workflow_handle(wid)
        d = await handle.describe()
        history = await handle.fetch_history()
        events = list(history.events)
        problems = audit(wid, events, closed=True) + child_problems(wid, events)
        if d.status != WorkflowExecutionStatus.COMPLETED:
            return [*problems, f"{wid} closed {d.status.name}"]
        if expected is not None and await handle.result() != expected:
            problems.append(f"{wid} returned {await handle.result()}, expected {expected}")
        return problems

    async def _decode(self, payloads: Any) -> Any:
        values = await self.client.data_converter.decode(list(payloads))
        return values[0]

    async def close(self) -> None:
        self.workers.stop_all()
        with contextlib.suppress(Exception):
            await self.client.close()
        self.ledger.close()


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
async def test_every_store_crash_point(store: str, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    hits = str(tmp_path / "hits.txt")
    points = tuple(p for p in crashpoints.STORE_POINTS if p not in crashpoints.TESTED_APART)
    async with databases(store, tmp_path, points) as urls:
        # The k-th hit, k in 1..3; a claim only the first time: the batch it claims runs on
        # without another (activities leased in the workflow task's commit, next tasks run
        # in their commit), so a third claim may never come.
        runs = [
            Point(
                p, urls[p], tmp_path / p, 1 if p == "after_lease_claim" else rng.randint(1, 3), hits
            )
            for p in points
        ]
        try:
            for run in runs:
                await run.start(rng)
            for run in runs:
                await run.recover()
            for run in runs:
                problems = await run.check()
                assert problems == [], (rerun_hint(seed), run.point, run.workers.logs())
                assert [
                    n for n in run.workers.dead() if not n.startswith("crash-") and n != "sender"
                ] == [], run.workers.logs()
            assert sorted(crashpoints.hits(hits)) == sorted(points)
        finally:
            for run in runs:
                await run.close()
