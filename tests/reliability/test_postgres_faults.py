"""PostgreSQL faults (RELIABILITY.md sections 3 and 4), CI tier.

* A crash-restart (``pg_ctl restart -m immediate``: WAL replay) of a throwaway cluster of
  the test's own while three worker processes run: no worker exits, nothing is lost or
  completed twice.
* Every engine session terminated (``pg_terminate_backend``) three times while three worker
  processes run, on a throwaway cluster (where every session is the test's own): no worker
  exits, nothing is lost or completed twice.
* A worker partitioned from PostgreSQL (its connections held by the loopback proxy) for
  longer than its activity's lease: another worker runs the activity again, and the
  partitioned worker's late completion, delivered when the partition heals, is refused by
  the fence. The refusals are counted: a partition that refused nothing tested nothing.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from harness import rerun_hint
from harness.app import STOLEN_MARK
from harness.ledger import Ledger
from harness.pgfaults import terminate_backends
from harness.proxy import Proxy
from harness.workers import Workers, check_torture, poll_until, start_all, wait_all
from pgserver import private_server

from perdure import Client

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]

SLOW_ACTIVITIES = {"PERDURE_ACTIVITY_MIN_S": "0.05", "PERDURE_ACTIVITY_MAX_S": "0.2"}


async def test_immediate_restarts_mid_run(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    workflows, steps, restarts = 8, 3, 1
    with private_server() as server:
        ledger = Ledger(str(tmp_path / "ledger.db"))
        workers = Workers(tmp_path, server.url, ledger.path, env=SLOW_ACTIVITIES)
        client = await Client.connect(server.url)
        try:
            for i in range(3):
                workers.spawn(f"w{i}")
            inputs = {f"r-{i}": rng.randrange(1_000_000) for i in range(workflows)}
            await start_all(client, inputs, steps)
            for k in range(1, restarts + 1):
                target = k * workflows * steps // (restarts + 2)
                await poll_until(
                    f"{target} steps ran",
                    lambda t=target: sum(ledger.executions().values()) >= t,
                    logs=workers,
                )
                await asyncio.to_thread(server.restart, "immediate")
            await wait_all(client, inputs, 60.0, workers)
            report = await check_torture(client, inputs, steps, ledger)
            assert report.problems() == [], (rerun_hint(seed), report.figures(), workers.logs())
            assert workers.dead() == [], workers.logs()
        finally:
            workers.stop_all()
            await client.close()
            ledger.close()


async def test_backends_terminated_mid_run(tmp_path: Path, seed: int) -> None:
    """``pg_terminate_backend`` on every session of the engine's (workers' and client's),
    three times in a run: each is a connection lost mid-statement, or mid-COMMIT."""
    rng = random.Random(seed)
    workflows, steps, rounds = 8, 3, 3
    with private_server() as server:
        ledger = Ledger(str(tmp_path / "ledger.db"))
        workers = Workers(tmp_path, server.url, ledger.path, env=SLOW_ACTIVITIES)
        client = await Client.connect(server.url)
        try:
            for i in range(3):
                workers.spawn(f"w{i}")
            inputs = {f"k-{i}": rng.randrange(1_000_000) for i in range(workflows)}
            await start_all(client, inputs, steps)
            terminated = []
            for k in range(1, rounds + 1):
                target = k * workflows * steps // (rounds + 2)
                await poll_until(
                    f"{target} steps ran",
                    lambda t=target: sum(ledger.executions().values()) >= t,
                    logs=workers,
                )
                terminated.append(await terminate_backends(server.url))
            await wait_all(client, inputs, 60.0, workers)
            report = await check_torture(client, inputs, steps, ledger)
            assert report.problems() == [], (rerun_hint(seed), report.figures(), workers.logs())
            assert workers.dead() == [], workers.logs()
            # Three workers and the client have sessions: each round ended some.
            assert all(n >= 3 for n in terminated), (terminated, rerun_hint(seed))
        finally:
            workers.stop_all()
            await client.close()
            ledger.close()


async def test_partitioned_worker_is_fenced(postgres_url: str, tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path / "ledger.db"))
    # Activities that outlast nothing but the partition: 0.3 s, with a 1 s lease.
    env = {"PERDURE_ACTIVITY_MIN_S": "0.3", "PERDURE_ACTIVITY_MAX_S": "0.3"}
    workers = Workers(tmp_path, postgres_url, ledger.path, env=env)
    proxy = Proxy("127.0.0.1", 5432).start()
    client = await Client.connect(postgres_url)
    try:
        partitioned = workers.spawn("partitioned", url=proxy.url(postgres_url))
        inputs = {f"p-{i}": i for i in range(3)}
        await start_all(client, inputs, 2)
        # The partition begins while the worker has activities in flight.
        await poll_until(
            "the partitioned worker runs an activity",
            lambda: any(e.pid == partitioned.pid for e in ledger.entries()),
            logs=workers,
        )
        proxy.hold()
        healthy = workers.spawn("healthy")

        def taken_over() -> bool:
            entries = ledger.entries()
            mine = {(e.workflow_id, e.seq) for e in entries if e.pid == partitioned.pid}
            return any(
                (e.workflow_id, e.seq) in mine and e.phase == "after"
                for e in entries
                if e.pid == healthy.pid
            )

        # Past the partitioned worker's lease, the healthy worker runs its activity again.
        await poll_until("the healthy worker takes over", taken_over, logs=workers)
        # The partition heals: the held bytes reach the database, late. (Until then, a
        # transaction of the partitioned worker may hold a run's row lock: that run waits.)
        proxy.heal()
        await wait_all(client, inputs, 60.0, workers)
        await poll_until(
            "a late completion is refused by the fence",
            lambda: workers.count_in_logs(STOLEN_MARK) > 0,
            logs=workers,
        )
        refused = workers.count_in_logs(STOLEN_MARK)
        report = await check_torture(client, inputs, 2, ledger)
        assert report.problems() == [], (report.figures(), workers.logs())
        # The refused attempts ran (their side effect is in the ledger): extra executions,
        # allowed, each from the partitioned worker.
        extra_pids = {
            e.pid for e in ledger.entries() if e.phase == "after" and e.pid == partitioned.pid
        }
        assert refused >= 1 and extra_pids == {partitioned.pid}
        assert workers.dead() == [], workers.logs()
    finally:
        workers.stop_all()
        proxy.stop()
        await client.close()
        ledger.close()


async def test_sessions_end_a_transaction_left_idle(postgres_url: str) -> None:
    """A session of perdure's left inside a transaction (its worker cut off from the server
    mid-transaction) is ended by the server after a minute, which releases the run's row
    lock it held: without it, the run would wait until TCP gives up on the connection."""
    client = await Client.connect(postgres_url)
    try:
        await client.count_workflows()  # opens the pool
        pool = client.store._pool  # type: ignore[attr-defined]
        async with pool.acquire() as conn:
            shown = await conn.fetchval("SHOW idle_in_transaction_session_timeout")
        assert shown == "1min"
    finally:
        await client.close()
