"""PostgreSQL restarts under running workers: they reconnect by themselves and carry on,
every workflow completes with the right result, each activity is completed once in its
history and each workflow closed once, and a client waiting on a result gets it.

The test has a PostgreSQL server of its own (``pgserver``) and restarts it mid-run: ``fast``
(sessions are rolled back, the server shuts down cleanly) and ``immediate`` (a crash:
processes are killed, uncommitted work is lost, the WAL is replayed at the next start), and
stops it ``immediate`` for seconds of downtime, during which a client starts workflows.

Two workers run in this process, each on a Client of its own (its own pool and LISTEN
connection, as a worker in another process would have), each on a task queue of its own so
that both must have survived for every workflow to finish.

A crash while a COMMIT is on its way is made certain by a fault put in at a seam (the
store's pool): the store must learn from the restarted server whether the transaction
committed, and neither lose nor repeat it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from pgserver import PostgresServer, private_server
from pgutil import with_schema

from perdure import Client, Worker, activity, workflow
from perdure._common.events import EventType
from perdure._store import _postgres
from perdure.client import WorkflowHandle
from perdure.exceptions import PerdureError

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]

QUEUES = ("restart-a", "restart-b")
WORKFLOWS = 12  # started before the restart, half on each queue
ACTIVITY_SECONDS = 0.3
TIMER_SECONDS = 0.5
# Generous: an activity whose outcome was lost is run again only once its lease expires.
ACTIVITY_TIMEOUT = timedelta(seconds=5)
TASK_TIMEOUT = timedelta(seconds=3)
DEADLINE = 60.0

# Attempts begun, by (workflow id, activity type): what really ran, however often.
runs: collections.Counter[tuple[str, str]] = collections.Counter()


async def _step(value: int) -> int:
    info = activity.info()
    runs[(info.workflow_id, info.activity_type)] += 1
    await asyncio.sleep(ACTIVITY_SECONDS)
    return value


@activity.defn
async def add_one(value: int) -> int:
    return await _step(value) + 1


@activity.defn
async def double(value: int) -> int:
    return await _step(value) * 2


@activity.defn
async def add_ten(value: int) -> int:
    return await _step(value) + 10


ACTIVITIES = (add_one, double, add_ten)


def expected(value: int) -> int:
    return (value + 1) * 2 + 10


@workflow.defn
class Steps:
    """An activity, a timer, an activity, a timer, an activity."""

    @workflow.run
    async def run(self, value: int) -> int:
        value = await workflow.execute_activity(
            add_one, value, start_to_close_timeout=ACTIVITY_TIMEOUT
        )
        await workflow.sleep(TIMER_SECONDS)
        value = await workflow.execute_activity(
            double, value, start_to_close_timeout=ACTIVITY_TIMEOUT
        )
        await workflow.sleep(TIMER_SECONDS)
        return await workflow.execute_activity(
            add_ten, value, start_to_close_timeout=ACTIVITY_TIMEOUT
        )


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with private_server() as s:
        yield s


@pytest.fixture
def url(server: PostgresServer) -> Iterator[str]:
    if not server.is_running():  # an earlier test failed while it was down
        server.start()
    yield with_schema(server.url, f"t_{uuid.uuid4().hex}")
    if not server.is_running():
        server.start()


async def start(client: Client, value: int) -> WorkflowHandle[Any]:
    return await client.start_workflow(
        Steps.run,
        value,
        id=f"wf-{value}",
        task_queue=QUEUES[value % 2],
        task_timeout=TASK_TIMEOUT,
    )


async def wait_until(what: str, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {DEADLINE:g}s waiting until {what}")
        await asyncio.sleep(0.02)


async def assert_completed_once(handle: WorkflowHandle[Any]) -> None:
    """Closed once, as completed; each activity scheduled once and completed once; both
    timers fired once; event ids without a gap."""
    events = (await handle.fetch_history()).events
    context = (handle.id, [str(e.event_type) for e in events])
    assert [e.event_id for e in events] == list(range(1, len(events) + 1)), context
    count = collections.Counter(EventType(e.event_type) for e in events)
    assert count[EventType.WORKFLOW_EXECUTION_STARTED] == 1, context
    assert count[EventType.WORKFLOW_EXECUTION_COMPLETED] == 1, context
    assert events[-1].event_type == EventType.WORKFLOW_EXECUTION_COMPLETED, context
    assert count[EventType.TIMER_STARTED] == count[EventType.TIMER_FIRED] == 2, context
    scheduled = {
        e.event_id: e.attributes["activity_type"]
        for e in events
        if e.event_type == EventType.ACTIVITY_TASK_SCHEDULED
    }
    completed = [
        scheduled[e.attributes["scheduled_event_id"]]
        for e in events
        if e.event_type == EventType.ACTIVITY_TASK_COMPLETED
    ]
    names = [a.__name__ for a in ACTIVITIES]
    assert sorted(scheduled.values()) == sorted(names), context
    assert sorted(completed) == sorted(names), context
    for name in names:
        assert runs[(handle.id, name)] >= 1, (handle.id, name, runs)


RESTARTS = {
    "fast": ("fast", 0.0),
    "immediate": ("immediate", 0.0),
    "immediate-3s-down": ("immediate", 3.0),
}


@pytest.mark.parametrize("restart", list(RESTARTS))
async def test_workers_carry_on_across_a_restart(
    server: PostgresServer, url: str, restart: str, caplog: pytest.LogCaptureFixture
) -> None:
    mode, downtime = RESTARTS[restart]
    caplog.set_level(logging.INFO, logger="perdure")
    runs.clear()
    client = await Client.connect(url)
    worker_clients = [await Client.connect(url) for _ in QUEUES]
    workers = [
        Worker(c, task_queue=q, workflows=[Steps], activities=list(ACTIVITIES))
        for c, q in zip(worker_clients, QUEUES, strict=True)
    ]
    try:
        async with workers[0], workers[1]:
            handles = [await start(client, i) for i in range(WORKFLOWS)]
            # Waiting on the results from now on: the waits span the restart.
            results = asyncio.gather(*(h.result() for h in handles))
            # A third of the activities begun: some completed, some running, timers pending.
            await wait_until("a third of the activities ran", lambda: runs.total() >= WORKFLOWS)
            began = time.monotonic()
            late: list[Awaitable[WorkflowHandle[Any]]] = []
            if downtime:
                await asyncio.to_thread(server.stop, mode)
                # Started while the server is down: the start waits for it to come back.
                late = [asyncio.ensure_future(start(client, WORKFLOWS + i)) for i in (0, 1)]
                await asyncio.sleep(downtime)
                await asyncio.to_thread(server.start)
            else:
                await asyncio.to_thread(server.restart, mode)
                late = [start(client, WORKFLOWS + i) for i in (0, 1)]
            handles += [await h for h in late]
            got = await asyncio.wait_for(results, DEADLINE)
            assert got == [expected(i) for i in range(WORKFLOWS)]
            # Both workers carry on: the workflows started since are served by each.
            got = await asyncio.wait_for(
                asyncio.gather(*(h.result() for h in handles[WORKFLOWS:])), DEADLINE
            )
            assert got == [expected(WORKFLOWS + i) for i in (0, 1)]
            recovered = time.monotonic() - began
            assert all(w.is_running for w in workers)
            for h in handles:
                await assert_completed_once(h)
    finally:
        for c in (client, *worker_clients):
            await c.close()
    troubles = [r for r in caplog.records if r.levelno >= logging.WARNING]
    errors = [r for r in troubles if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    # The outage is logged once by each store (three here), not once per failed attempt.
    assert len(troubles) <= 3 * 2, [r.getMessage() for r in troubles]
    again = sorted(key for key, n in runs.items() if n > 1)  # their outcome came too late
    print(f"{restart}: all done {recovered:.1f}s after the restart began; run again: {again}")


class CrashAtCommit:
    """The store's pool, but the next COMMIT on it meets a server crash: ``before`` it is
    sent, or ``after`` it committed and before its reply is read; ``reused``: before it is
    sent, and the restarted server hands the transaction's id out again, to a transaction
    that commits before the store can ask what became of its own."""

    def __init__(self, pool: Any, server: PostgresServer, when: str) -> None:
        self._pool = pool
        self._server = server
        self._when = when
        self.struck = False
        self.reused = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    def acquire(self) -> Any:
        return _Acquired(self._pool.acquire(), self)

    async def commit(self, conn: Any) -> Any:
        if self.struck:
            return await conn.execute("COMMIT")
        self.struck = True
        if self._when in ("before", "reused"):
            xid = await conn.fetchval("SELECT txid_current_if_assigned()")
            await asyncio.to_thread(self._server.restart, "immediate")
            if self._when == "reused":
                self.reused = await self._hand_out(xid)
            return await conn.execute("COMMIT")  # on a connection the crash closed
        await conn.execute("COMMIT")
        await asyncio.to_thread(self._server.restart, "immediate")
        raise asyncpg.ConnectionDoesNotExistError(
            "connection was closed in the middle of operation"
        )

    async def _hand_out(self, xid: int) -> bool:
        """Commit transactions until one has the id ``xid``; whether one had."""
        admin = await asyncpg.connect(self._server.url)
        try:
            for _ in range(10):
                got = await admin.fetchval("SELECT txid_current()")
                if got >= xid:
                    return bool(got == xid)
            return False
        finally:
            await admin.close()


class _Acquired:
    def __init__(self, acquiring: Any, fault: CrashAtCommit) -> None:
        self._acquiring = acquiring
        self._fault = fault

    async def __aenter__(self) -> Any:
        return _Connection(await self._acquiring.__aenter__(), self._fault)

    async def __aexit__(self, *exc: object) -> None:
        await self._acquiring.__aexit__(*exc)


class _Connection:
    def __init__(self, conn: Any, fault: CrashAtCommit) -> None:
        self._conn = conn
        self._fault = fault

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            return await self._fault.commit(self._conn)
        return await self._conn.execute(sql, *args)


@pytest.mark.parametrize("when", ["before", "reused", "after"])
async def test_a_commit_cut_by_a_crash_is_applied_once(
    server: PostgresServer, url: str, when: str
) -> None:
    client = await Client.connect(url)
    try:
        handle = await start(client, 0)  # no worker: the signal goes straight to history
        store: Any = client.store
        fault = store._pool = CrashAtCommit(store._pool, server, when)
        await handle.signal("go", 1)
        assert fault.struck
        # None of the transaction reached the WAL before the crash (it is small, and its
        # COMMIT would have flushed it), so its id is handed out again.
        assert fault.reused == (when == "reused")
        await handle.signal("go", 2)  # and the store carries on
        events = (await handle.fetch_history()).events
        signals = [e for e in events if e.event_type == EventType.WORKFLOW_EXECUTION_SIGNALED]
        assert len(signals) == 2, [str(e.event_type) for e in events]
    finally:
        await client.close()


async def test_an_outage_past_the_retry_budget_fails_clearly(
    server: PostgresServer, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_postgres, "RECONNECT_SECONDS", 1.0)
    client = await Client.connect(url)
    try:
        handle = await start(client, 0)
        await asyncio.to_thread(server.stop, "fast")
        for write_or_read in (lambda: handle.signal("go"), handle.describe):
            began = time.monotonic()
            with pytest.raises(PerdureError, match=r"PostgreSQL could not be reached for \ds"):
                await write_or_read()
            assert 1.0 <= time.monotonic() - began < 5.0
        # Closing the store does not wait as long.
        monkeypatch.setattr(_postgres, "RECONNECT_SECONDS", 60.0)
        pending = asyncio.ensure_future(handle.signal("late"))
        await asyncio.sleep(0.3)  # it is being tried again by now
        began = time.monotonic()
        await client.close()
        assert time.monotonic() - began < _postgres.CLOSING_RECONNECT_SECONDS + 2.0
        with pytest.raises(PerdureError, match="could not be reached"):
            await pending
    finally:
        await client.close()
