"""Two processes' batches that lock the same runs in opposite orders do not deadlock: an
operation after the first of a batch waits for a row lock only briefly, then runs again at
the head of the next batch (``_postgres_support.BATCH_LOCK_TIMEOUT``). Before, PostgreSQL
found each such deadlock after its ``deadlock_timeout`` (1 s), and a 10,000-signal burst from
50 senders in 5 processes ran at 30 signals a second."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from pgutil import POSTGRES_URL, REQUIRE_POSTGRES, postgres_admin

from perdure import Client, workflow

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("asyncpg") is None and not REQUIRE_POSTGRES,
    reason="PostgreSQL tests need asyncpg: pip install -e '.[dev]'",
)
ROUNDS = 20


@workflow.defn
class Sink:
    @workflow.signal
    def add(self, value: int) -> None: ...

    @workflow.run
    async def run(self) -> None: ...


async def test_batches_locking_runs_in_opposite_orders_do_not_deadlock() -> None:
    admin = await postgres_admin()
    name = f"perdure_locks_{uuid.uuid4().hex[:10]}"  # its own deadlock counter
    await admin.execute(f"CREATE DATABASE {name}")
    url = urlunsplit(urlsplit(POSTGRES_URL)._replace(path=f"/{name}"))
    try:
        one, two = await Client.connect(url), await Client.connect(url)
        try:
            a = await one.start_workflow(Sink.run, id="a", task_queue="q")
            b = await one.start_workflow(Sink.run, id="b", task_queue="q")
            a2, b2 = two.get_workflow_handle("a"), two.get_workflow_handle("b")
            for i in range(ROUNDS):
                # Each client's two signals commit in one batch: a then b, and b then a.
                await asyncio.gather(
                    a.signal(Sink.add, i),
                    b.signal(Sink.add, i),
                    b2.signal(Sink.add, i),
                    a2.signal(Sink.add, i),
                )
            for handle in (a, b):
                events = (await handle.fetch_history()).events
                signals = [e for e in events if e.event_type == "WorkflowExecutionSignaled"]
                assert len(signals) == 2 * ROUNDS
        finally:
            await one.close()
            await two.close()
        # The sessions have ended: their statistics are in.
        deadlocks = await admin.fetchval(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = $1", name
        )
        assert deadlocks == 0
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()
