"""Counting the rows a run owns, table by table, on either store: what tests of reset and
deletion check for orphans with; and the start request the store tests begin runs with."""

from __future__ import annotations

from typing import Any

from perdure._store import Store
from perdure._store._types import StartWorkflowRequest

# The tables whose rows belong to a run, by its run_id column.
RUN_TABLES = (
    "executions",
    "history",
    "inbox",
    "tasks",
    "timers",
    "search_attributes",
    "updates",
    "signal_requests",
)


async def run_rows(store: Store, run_id: str) -> dict[str, int]:
    """How many rows each table holds for ``run_id``."""

    async def count(tx: Any) -> dict[str, int]:
        out = {}
        for table in RUN_TABLES:
            if store.dialect == "sqlite":
                sql = f"SELECT COUNT(*) FROM {table} WHERE run_id = ?"
                out[table] = int(tx.c.execute(sql, (run_id,)).fetchone()[0])
            else:
                sql = f"SELECT COUNT(*) FROM {table} WHERE run_id = $1"
                out[table] = int(await tx.c.fetchval(sql, run_id))
        return out

    result: dict[str, int] = await store.read(count)
    return result


async def task_refs(store: Store, run_id: str, kind: int) -> list[int]:
    """The refs (activity seqs) of a run's tasks of one kind (2: activity)."""

    async def read(tx: Any) -> list[int]:
        if store.dialect == "sqlite":
            rows = tx.c.execute(
                "SELECT ref FROM tasks WHERE run_id = ? AND kind = ? ORDER BY ref", (run_id, kind)
            ).fetchall()
        else:
            rows = await tx.c.fetch(
                "SELECT ref FROM tasks WHERE run_id = $1 AND kind = $2 ORDER BY ref", run_id, kind
            )
        return [int(r[0]) for r in rows]

    result: list[int] = await store.read(read)
    return result


async def timer_seqs(store: Store, run_id: str) -> list[int]:
    """The seqs of a run's timer rows (0 is its run-timeout timer)."""

    async def read(tx: Any) -> list[int]:
        if store.dialect == "sqlite":
            rows = tx.c.execute(
                "SELECT seq FROM timers WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        else:
            rows = await tx.c.fetch("SELECT seq FROM timers WHERE run_id = $1 ORDER BY seq", run_id)
        return [int(r[0]) for r in rows]

    result: list[int] = await store.read(read)
    return result


def start_request(workflow_id: str, **fields: Any) -> StartWorkflowRequest:
    """A start of type ``W`` on queue ``q``, its run id ``run-<workflow_id>`` unless
    ``fields`` (any of the request's) say otherwise."""
    return StartWorkflowRequest(
        **{
            "namespace": "default",
            "workflow_id": workflow_id,
            "workflow_type": "W",
            "task_queue": "q",
            "input": [],
            "run_id": f"run-{workflow_id}",
            **fields,
        }
    )
