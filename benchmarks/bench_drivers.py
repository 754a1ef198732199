"""Which PostgreSQL driver for perdure: asyncpg or psycopg 3 (async), on perdure's statements.

Run it (needs ``pip install -e '.[bench]'``: asyncpg and psycopg with its C build)::

    python benchmarks/bench_drivers.py --postgres postgresql://postgres@127.0.0.1/test
    python benchmarks/bench_drivers.py --postgres URL --runs 7 --iterations 500

Each driver talks to the same server over one connection, in a fresh schema (dropped
afterwards) holding copies of perdure's ``tasks`` and ``history`` tables. What is timed, one
operation at a time (the latency that a group-committed batch adds up):

- claim: the workflow-task claim, an ``UPDATE ... FROM`` a CTE that picks one visible task
  ``FOR UPDATE SKIP LOCKED``, returning the task's 18 columns (the queue holds a task for
  every claim);
- history insert: three history events in one ``INSERT ... SELECT FROM unnest(...)``;
- transaction: what completing a workflow task costs at its smallest: ``BEGIN``, a row read
  ``FOR UPDATE``, an update, a history insert, a delete, ``COMMIT`` (six round trips). psycopg
  is measured twice: as asyncpg does it (one statement at a time), and in pipeline mode,
  which sends the statements without waiting for each reply;
- notify latency: from a committed ``NOTIFY`` on one connection to its delivery to a
  listening connection's handler.

Each figure is the median over ``--iterations`` operations; each run measures every driver
once, alternating which goes first; the table shows the median of the runs and the ratio
psycopg / asyncpg (above 1: asyncpg is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import psycopg

TASK_COLUMNS = (
    "task_id, kind, namespace, task_queue, run_id, workflow_id, ref, visible_at, "
    "lease_seconds, attempt, lease_owner, lease_expires, deadline, final_deadline, "
    "heartbeat_timeout, started_at, data, async_pending"
)
SCHEMA = [
    """CREATE TABLE tasks (
        task_id BIGSERIAL PRIMARY KEY, kind INTEGER NOT NULL, namespace TEXT NOT NULL,
        task_queue TEXT NOT NULL, run_id TEXT NOT NULL, workflow_id TEXT NOT NULL,
        ref BIGINT NOT NULL, visible_at DOUBLE PRECISION NOT NULL,
        lease_seconds DOUBLE PRECISION NOT NULL, attempt INTEGER NOT NULL DEFAULT 1,
        lease_owner TEXT, lease_expires DOUBLE PRECISION, deadline DOUBLE PRECISION,
        final_deadline DOUBLE PRECISION, heartbeat_timeout DOUBLE PRECISION,
        started_at DOUBLE PRECISION, data BYTEA NOT NULL,
        async_pending INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX tasks_ready ON tasks (namespace, task_queue, kind, visible_at) "
    "WHERE lease_owner IS NULL",
    """CREATE TABLE history (
        run_id TEXT NOT NULL, event_id BIGINT NOT NULL, event_type TEXT NOT NULL,
        event_time DOUBLE PRECISION NOT NULL, attributes BYTEA NOT NULL,
        PRIMARY KEY (run_id, event_id))""",
]
# $n placeholders (asyncpg); psycopg gets the same text with %s.
CLAIM = (
    "WITH picked AS (SELECT task_id FROM tasks WHERE namespace = $1 AND task_queue = $2 "
    "AND kind = $3 AND lease_owner IS NULL AND visible_at <= $4 ORDER BY visible_at, task_id "
    "LIMIT $5 FOR UPDATE SKIP LOCKED) UPDATE tasks t SET lease_owner = $6, "
    "lease_expires = $4 + t.lease_seconds, started_at = $4, async_pending = 0, "
    "deadline = LEAST($4 + t.lease_seconds, t.final_deadline, $4 + t.heartbeat_timeout) "
    f"FROM picked WHERE t.task_id = picked.task_id RETURNING t.{TASK_COLUMNS.replace(', ', ', t.')}"
)
HISTORY = (
    "INSERT INTO history (run_id, event_id, event_type, event_time, attributes) "
    "SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::float8[], $5::bytea[])"
)
LOCK_TASK = f"SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = $1 FOR UPDATE"
TOUCH_TASK = "UPDATE tasks SET attempt = attempt + 1 WHERE task_id = $1"
DELETE_HISTORY = "DELETE FROM history WHERE run_id = $1"
EVENT = b'{"seq":1,"activity_type":"noop","input":[{"metadata":{},"data":"MQ=="}]}'


def psycopg_sql(sql: str) -> str:
    """The statement with psycopg's placeholders (no statement here repeats a placeholder
    out of order except $4 in CLAIM, which psycopg gets as a named parameter)."""
    out = sql
    for i in range(9, 0, -1):
        out = out.replace(f"${i}", f"%(p{i})s")
    return out


def named(*args: Any) -> dict[str, Any]:
    return {f"p{i}": a for i, a in enumerate(args, 1)}


def history_args(run_id: str, first: int) -> tuple[Any, ...]:
    ids = [first, first + 1, first + 2]
    return (run_id, ids, ["ActivityTaskScheduled"] * 3, [time.time()] * 3, [EVENT] * 3)


class Driver:
    """One connection (plus one listening) through one driver, and the four measurements."""

    name: str

    async def setup(self, url: str, schema: str) -> None: ...
    async def close(self) -> None: ...
    async def claim(self) -> None: ...
    async def insert_history(self, run_id: str, first: int) -> None: ...
    async def transaction(self, run_id: str) -> None: ...
    async def notify_latency(self, channel: str, iterations: int) -> list[float]: ...


class Asyncpg(Driver):
    name = "asyncpg"

    async def setup(self, url: str, schema: str) -> None:
        settings = {"search_path": schema}
        self.c = await asyncpg.connect(url, server_settings=settings)
        self.listener = await asyncpg.connect(url, server_settings=settings)

    async def close(self) -> None:
        await self.c.close()
        await self.listener.close()

    async def claim(self) -> None:
        rows = await self.c.fetch(CLAIM, "default", "q", 1, time.time(), 1, "worker-1")
        assert rows

    async def insert_history(self, run_id: str, first: int) -> None:
        await self.c.execute(HISTORY, *history_args(run_id, first))

    async def transaction(self, run_id: str) -> None:
        await self.c.execute("BEGIN")
        await self.c.fetchrow(LOCK_TASK, 1)
        await self.c.execute(TOUCH_TASK, 1)
        await self.c.execute(HISTORY, *history_args(run_id, 1))
        await self.c.execute(DELETE_HISTORY, run_id)
        await self.c.execute("COMMIT")

    async def notify_latency(self, channel: str, iterations: int) -> list[float]:
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Future[float]] = []

        def on_notify(*_: Any) -> None:
            if waiting and not waiting[0].done():
                waiting[0].set_result(time.perf_counter())

        await self.listener.add_listener(channel, on_notify)
        samples = []
        for _ in range(iterations):
            waiting[:] = [loop.create_future()]
            t0 = time.perf_counter()
            await self.c.execute("SELECT pg_notify($1, 'x')", channel)
            samples.append(await asyncio.wait_for(waiting[0], 5) - t0)
        await self.listener.remove_listener(channel, on_notify)
        return samples


class Psycopg(Driver):
    def __init__(self, *, pipeline: bool) -> None:
        self.pipeline = pipeline
        self.name = "psycopg pipeline" if pipeline else "psycopg"

    async def setup(self, url: str, schema: str) -> None:
        options = f"-c search_path={schema}"
        self.c = await psycopg.AsyncConnection.connect(url, autocommit=True, options=options)
        self.listener = await psycopg.AsyncConnection.connect(url, autocommit=True, options=options)

    async def close(self) -> None:
        await self.c.close()
        await self.listener.close()

    async def claim(self) -> None:
        cur = await self.c.execute(
            psycopg_sql(CLAIM),
            named("default", "q", 1, time.time(), 1, "worker-1"),
            binary=True,
        )
        assert await cur.fetchall()

    async def insert_history(self, run_id: str, first: int) -> None:
        await self.c.execute(psycopg_sql(HISTORY), named(*history_args(run_id, first)))

    async def transaction(self, run_id: str) -> None:
        if not self.pipeline:
            await self.c.execute("BEGIN")
            cur = await self.c.execute(psycopg_sql(LOCK_TASK), named(1), binary=True)
            await cur.fetchone()
            await self.c.execute(psycopg_sql(TOUCH_TASK), named(1))
            await self.c.execute(psycopg_sql(HISTORY), named(*history_args(run_id, 1)))
            await self.c.execute(psycopg_sql(DELETE_HISTORY), named(run_id))
            await self.c.execute("COMMIT")
            return
        async with self.c.pipeline():
            await self.c.execute("BEGIN")
            cur = await self.c.execute(psycopg_sql(LOCK_TASK), named(1), binary=True)
            await self.c.execute(psycopg_sql(TOUCH_TASK), named(1))
            await self.c.execute(psycopg_sql(HISTORY), named(*history_args(run_id, 1)))
            await self.c.execute(psycopg_sql(DELETE_HISTORY), named(run_id))
            await self.c.execute("COMMIT")
            await cur.fetchone()

    async def notify_latency(self, channel: str, iterations: int) -> list[float]:
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Future[float]] = []
        await self.listener.execute(f'LISTEN "{channel}"')

        async def receive() -> None:
            async for _ in self.listener.notifies():
                if waiting and not waiting[0].done():
                    waiting[0].set_result(time.perf_counter())

        receiver = asyncio.create_task(receive())
        samples = []
        try:
            for _ in range(iterations):
                waiting[:] = [loop.create_future()]
                t0 = time.perf_counter()
                await self.c.execute("SELECT pg_notify(%s, 'x')", (channel,))
                samples.append(await asyncio.wait_for(waiting[0], 5) - t0)
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
        await self.listener.execute(f'UNLISTEN "{channel}"')
        return samples


async def timed(iterations: int, fn: Callable[[int], Awaitable[None]]) -> float:
    """Median microseconds of ``fn(i)``, after warming up (psycopg prepares a statement on
    its fifth run; asyncpg on its first)."""
    for i in range(10):
        await fn(-1 - i)
    samples = []
    for i in range(iterations):
        t0 = time.perf_counter()
        await fn(i)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


async def measure(driver: Driver, url: str, iterations: int) -> dict[str, float]:
    schema = f"bench_drivers_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        await admin.execute(f'SET search_path TO "{schema}"')
        for statement in SCHEMA:
            await admin.execute(statement)
        await admin.execute(
            "INSERT INTO tasks (kind, namespace, task_queue, run_id, workflow_id, ref, "
            "visible_at, lease_seconds, data) SELECT 1, 'default', 'q', 'r' || i, 'w' || i, 0, "
            "i, 10, '\\x00'::bytea FROM generate_series(1, $1) AS i",
            iterations + 100,
        )
        await admin.execute("ANALYZE")
        await driver.setup(url, schema)
        try:
            run = uuid.uuid4().hex
            out = {
                "claim": await timed(iterations, lambda i: driver.claim()),
                "history insert": await timed(
                    iterations, lambda i: driver.insert_history(run, 3 * i + 1000)
                ),
                "transaction": await timed(iterations, lambda i: driver.transaction(f"{run}-{i}")),
            }
            notify = await driver.notify_latency(f"bench_{schema}", iterations)
            out["notify latency"] = statistics.median(notify) * 1e6
            return out
        finally:
            await driver.close()
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def main(args: argparse.Namespace) -> int:
    drivers: list[Driver] = [Asyncpg(), Psycopg(pipeline=False), Psycopg(pipeline=True)]
    print(
        f"asyncpg {asyncpg.__version__}, psycopg {psycopg.__version__} "
        f"({psycopg.pq.__impl__} implementation), libpq {psycopg.pq.version()}; "
        f"PostgreSQL at {args.postgres.split('@')[-1]}\n"
        f"{args.runs} runs of {args.iterations} operations each; microseconds per operation\n"
    )
    results: dict[str, list[dict[str, float]]] = {d.name: [] for d in drivers}
    for run in range(args.runs):
        order = drivers if run % 2 == 0 else drivers[::-1]
        for driver in order:
            results[driver.name].append(await measure(driver, args.postgres, args.iterations))
        print(
            f"run {run + 1}: "
            + "; ".join(
                f"{d.name} " + ", ".join(f"{v:.0f}" for v in results[d.name][-1].values())
                for d in drivers
            ),
            flush=True,
        )
    medians = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for name, runs in results.items()
    }
    base = medians["asyncpg"]
    names = [d.name for d in drivers]
    print("\n" + "median µs".ljust(16) + "".join(n.rjust(18) for n in names))
    for key in base:
        cells = [f"{base[key]:.0f}"] + [
            f"{medians[n][key]:.0f} ({medians[n][key] / base[key]:.2f}x)" for n in names[1:]
        ]
        print(key.ljust(16) + "".join(c.rjust(18) for c in cells))
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="asyncpg vs psycopg 3 on perdure's statements")
    parser.add_argument("--postgres", required=True, metavar="URL", help="a PostgreSQL server")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=300, help="operations per figure")
    args = parser.parse_args()
    if args.runs < 1 or args.iterations < 1:
        parser.error("--runs and --iterations must be at least 1")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
