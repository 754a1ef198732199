"""Filling a database for ``bench_list.py``: N closed and M open workflows, and one workflow
with a long history, fast.

The rows are the engine's own: a few real workflows run through a real worker on the
target database (one completed, one failed, one cancelled, one terminated, one left
waiting, and one that runs activities until its history is ``--history`` events long), and
their ``executions`` rows, read back through the store, are the templates. Each bulk row is
a template's row as ``execution_values`` writes it (the store's own row writer), with the
columns that differ between runs (ids, type, task queue, times) replaced by name, then
inserted with one ``executemany`` (SQLite) or ``COPY`` (PostgreSQL). The bulk runs have no
history rows: listing and counting read the ``executions`` table only. SQLite gets no
``ANALYZE`` (perdure never runs one); PostgreSQL gets the ``VACUUM ANALYZE`` its autovacuum
runs after a bulk load.

A filled database is kept (the SQLite file, or the PostgreSQL schema) and reused by the next
run with the same sizes: see ``bench_list.py --cache-dir`` and ``--pg-schema``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from perdure import Client, Worker, activity, workflow
from perdure._common.status import WorkflowExecutionStatus
from perdure._store._rows import EXEC_COLS, execution_values
from perdure._store._types import Execution, WftState
from perdure.client import WorkflowFailureError
from perdure.exceptions import ApplicationError

TASK_QUEUE = "bench-list"
TIMEOUT = timedelta(seconds=60)
DAY = 86400.0

# Workflow types of the bulk runs and their shares; "Audit" is the rare one.
TYPES = (("Order", 0.50), ("Payment", 0.30), ("Shipment", 0.15), ("Refund", 0.049))
RARE_TYPE = "Audit"
# Statuses of the bulk closed runs and their shares.
CLOSED_SHARES = (
    (WorkflowExecutionStatus.COMPLETED, 0.85),
    (WorkflowExecutionStatus.FAILED, 0.08),
    (WorkflowExecutionStatus.TERMINATED, 0.04),
    (WorkflowExecutionStatus.CANCELED, 0.03),
)
HISTORY_WORKFLOW_ID = "long-history"


@activity.defn
async def step(i: int) -> int:
    return i


@workflow.defn
class Order:
    """``rounds`` rounds of ``width`` activities at once (each round adds ``3 * width + 3``
    events), or waits for a signal when ``rounds`` is negative; fails when asked."""

    def __init__(self) -> None:
        self.done = False

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self, rounds: int, width: int, fail: bool) -> int:
        if fail:
            raise ApplicationError("declined", non_retryable=True)
        if rounds < 0:
            await workflow.wait_condition(lambda: self.done)
        total = 0
        for r in range(rounds):
            done = await asyncio.gather(
                *(
                    workflow.execute_activity(step, r * width + i, start_to_close_timeout=TIMEOUT)
                    for i in range(width)
                )
            )
            total += sum(done)
        return total


@dataclass(frozen=True)
class Templates:
    """A real run's ``executions`` row for each status, and the long-history run."""

    by_status: dict[WorkflowExecutionStatus, Execution]
    history_run_id: str
    history_events: int


async def _row(client: Client, run_id: str) -> Execution:
    ex = await client.store.read(lambda tx: tx.get_execution(run_id))
    assert ex is not None, run_id
    return ex


async def make_templates(client: Client, history_events: int) -> Templates:
    """Run the template workflows on ``client``'s database through a real worker."""
    width = max(1, min(100, (history_events - 6) // 3))
    rounds = max(1, -(-(history_events - 6) // (3 * width + 3)))
    async with Worker(client, task_queue=TASK_QUEUE, workflows=[Order], activities=[step]):
        big = await client.start_workflow(
            Order.run, args=[rounds, width, False], id=HISTORY_WORKFLOW_ID, task_queue=TASK_QUEUE
        )
        done = await client.start_workflow(
            Order.run, args=[1, 1, False], id="template-completed", task_queue=TASK_QUEUE
        )
        failed = await client.start_workflow(
            Order.run, args=[0, 0, True], id="template-failed", task_queue=TASK_QUEUE
        )
        waiting = []
        for name in ("open", "canceled", "terminated"):
            waiting.append(
                await client.start_workflow(
                    Order.run, args=[-1, 0, False], id=f"template-{name}", task_queue=TASK_QUEUE
                )
            )
        await done.result()
        with contextlib.suppress(WorkflowFailureError):
            await failed.result()
        # Seen waiting (its first workflow task done) before it is cancelled or terminated.
        for handle in waiting:
            while (await _row(client, handle.result_run_id or "")).wft_state != WftState.NONE:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await waiting[1].cancel()
        await waiting[2].terminate(reason="template")
        for handle in waiting[1:]:
            with contextlib.suppress(WorkflowFailureError):
                await handle.result()
        await big.result()
    big_desc = await big.describe()
    rows = {
        WorkflowExecutionStatus.COMPLETED: await _row(client, done.result_run_id or ""),
        WorkflowExecutionStatus.FAILED: await _row(client, failed.result_run_id or ""),
        WorkflowExecutionStatus.RUNNING: await _row(client, waiting[0].result_run_id or ""),
        WorkflowExecutionStatus.CANCELED: await _row(client, waiting[1].result_run_id or ""),
        WorkflowExecutionStatus.TERMINATED: await _row(client, waiting[2].result_run_id or ""),
    }
    for status, ex in rows.items():
        assert ex.status == status, (status, ex.status)
    return Templates(rows, big_desc.run_id, big_desc.history_length)


COLUMNS = [c.strip() for c in EXEC_COLS.split(",")]
_AT = {name: i for i, name in enumerate(COLUMNS)}


def bulk_rows(templates: Templates, closed: int, open_: int, now: float) -> list[tuple[Any, ...]]:
    """The executions rows of ``closed`` closed and ``open_`` open runs, oldest first:
    closed ones started over the 30 days before ``now``, open ones over the last 3."""
    rng = random.Random(14)
    base = {status: execution_values(ex) for status, ex in templates.by_status.items()}
    statuses = [s for s, _ in CLOSED_SHARES]
    status_weights = [w for _, w in CLOSED_SHARES]
    types = [t for t, _ in TYPES] + [RARE_TYPE]
    type_weights = [w for _, w in TYPES] + [1 - sum(w for _, w in TYPES)]
    runs: list[tuple[float, WorkflowExecutionStatus]] = [
        (now - rng.random() * 30 * DAY, s) for s in rng.choices(statuses, status_weights, k=closed)
    ]
    runs += [(now - rng.random() * 3 * DAY, WorkflowExecutionStatus.RUNNING) for _ in range(open_)]
    runs.sort(key=lambda r: r[0])
    kinds = rng.choices(types, type_weights, k=len(runs))
    rows = []
    for i, ((start, status), kind) in enumerate(zip(runs, kinds, strict=True)):
        row = list(base[status])
        run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        row[_AT["run_id"]] = run_id
        row[_AT["first_run_id"]] = run_id
        row[_AT["workflow_id"]] = f"{kind.lower()}-{i:07d}"
        row[_AT["workflow_type"]] = kind
        row[_AT["task_queue"]] = f"{kind.lower()}s"
        row[_AT["start_time"]] = start
        if status is not WorkflowExecutionStatus.RUNNING:
            row[_AT["close_time"]] = min(now, start + rng.expovariate(1 / 30))
        rows.append(tuple(row))
    return rows


async def fill(client: Client, url: str, closed: int, open_: int, history: int) -> Templates:
    """Fill the empty database at ``url`` (``client`` is connected to it)."""
    t0 = time.perf_counter()
    templates = await make_templates(client, history)
    t1 = time.perf_counter()
    rows = bulk_rows(templates, closed, open_, client.store.clock.now())
    t2 = time.perf_counter()
    if url.startswith("sqlite"):
        _insert_sqlite(url, rows)
    else:
        await _insert_postgres(url, rows)
    t3 = time.perf_counter()
    print(
        f"  filled: templates {t1 - t0:.1f} s, rows {t2 - t1:.1f} s, insert {t3 - t2:.1f} s",
        flush=True,
    )
    return templates


def _insert_sqlite(url: str, rows: list[tuple[Any, ...]]) -> None:
    import sqlite3

    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        marks = ", ".join("?" * len(COLUMNS))
        with conn:
            conn.executemany(f"INSERT INTO executions ({EXEC_COLS}) VALUES ({marks})", rows)
        # No ANALYZE: perdure never runs it, so a real database has no statistics either.
    finally:
        conn.close()


def split_pg_url(url: str) -> tuple[str, str]:
    """The server URL and the schema of a ``...?schema=NAME`` URL."""
    server, _, params = url.partition("?")
    rest = []
    schema = ""
    for param in params.split("&"):
        if param.startswith("schema="):
            schema = param.removeprefix("schema=")
        elif param:
            rest.append(param)
    return (server + ("?" + "&".join(rest) if rest else "")), schema


async def _insert_postgres(url: str, rows: list[tuple[Any, ...]]) -> None:
    import asyncpg  # type: ignore[import-untyped]

    server, schema = split_pg_url(url)
    conn = await asyncpg.connect(server)
    try:
        await conn.copy_records_to_table(
            "executions", records=rows, columns=COLUMNS, schema_name=schema
        )
        # What autovacuum does soon after a bulk load (statistics, the visibility map).
        await conn.execute(f'VACUUM ANALYZE "{schema}".executions')
    finally:
        await conn.close()
