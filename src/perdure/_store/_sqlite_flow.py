"""SQLite's SQL for flow control (part of the ``Tx`` protocol): the fairness pass of a new
task, the token bucket of a queue's rate limit, and claims that skip concurrency keys at
their limit. See ``_flow`` for the rules. SQLite runs one write transaction at a time, so
these need no locks of their own."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from perdure._store._rows import FAR, TASK_COLS, task_row
from perdure._store._types import TaskKind, TaskRow

# What leasing a task sets: owner, lease expiry, start, and the deadline (the earliest of
# lease expiry, final deadline and heartbeat deadline).
LEASE_SQL = (
    "lease_owner = :owner, lease_expires = :now + lease_seconds, "
    "started_at = :now, async_pending = 0, deadline = MIN(:now + lease_seconds, "
    "COALESCE(final_deadline, :far), COALESCE(:now + heartbeat_timeout, :far))"
)
# The visible, unleased tasks of a queue in the order they are claimed (the tasks_ready
# index's order, so the claim is one range scan of it).
READY_SQL = (
    "namespace = :ns AND task_queue = :queue AND kind = :kind AND lease_owner IS NULL "
    "AND visible_at <= :now"
)
CLAIM_ORDER = "ORDER BY priority_key, fair_pass, visible_at, task_id"
# The claim: one statement, one range scan of tasks_ready (tests/flow/test_claim_plan.py).
CLAIM_SQL = (
    f"UPDATE tasks SET {LEASE_SQL} WHERE task_id IN (SELECT task_id FROM tasks "
    f"WHERE {READY_SQL} {CLAIM_ORDER} LIMIT :limit) RETURNING {TASK_COLS}"
)


class _SQLiteFlowTx:
    c: sqlite3.Connection

    async def next_fair_pass(
        self,
        namespace: str,
        task_queue: str,
        kind: TaskKind,
        priority_key: int,
        fairness_key: str,
        stride: float,
    ) -> float:
        key = (namespace, task_queue, int(kind), priority_key)
        # The queue's virtual time: the lowest pass still waiting, else the highest reached.
        now_pass = self.c.execute(
            "SELECT COALESCE((SELECT MIN(fair_pass) FROM tasks WHERE namespace = ? "
            "AND task_queue = ? AND kind = ? AND priority_key = ? AND lease_owner IS NULL "
            "AND fair_pass > 0), (SELECT MAX(fair_pass) FROM fairness WHERE namespace = ? "
            "AND task_queue = ? AND kind = ? AND priority_key = ?), 0)",
            key + key,
        ).fetchone()[0]
        row = self.c.execute(
            "INSERT INTO fairness (namespace, task_queue, kind, priority_key, fairness_key, "
            "fair_pass) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, task_queue, kind, "
            "priority_key, fairness_key) DO UPDATE SET fair_pass = MAX(fair_pass, ?) + ? "
            "RETURNING fair_pass",
            (*key, fairness_key, now_pass + stride, now_pass, stride),
        ).fetchone()
        return float(row[0])

    async def lock_queue(self, namespace: str, task_queue: str) -> None:
        return None  # the write transaction is the lock

    async def get_rate_bucket(self, namespace: str, task_queue: str) -> tuple[float, float] | None:
        row = self.c.execute(
            "SELECT tokens, updated_at FROM rate_limits WHERE namespace = ? AND task_queue = ?",
            (namespace, task_queue),
        ).fetchone()
        return (float(row[0]), float(row[1])) if row else None

    async def put_rate_bucket(
        self, namespace: str, task_queue: str, tokens: float, updated_at: float
    ) -> None:
        self.c.execute(
            "INSERT INTO rate_limits (namespace, task_queue, tokens, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (namespace, task_queue) DO UPDATE SET "
            "tokens = excluded.tokens, updated_at = excluded.updated_at",
            (namespace, task_queue, tokens, updated_at),
        )

    async def claim_candidates(
        self, kind: TaskKind, namespace: str, task_queue: str, now: float, limit: int, per_key: int
    ) -> list[tuple[int, str | None]]:
        rows = self.c.execute(
            f"SELECT task_id, concurrency_key FROM tasks WHERE {READY_SQL} "
            "AND (concurrency_key IS NULL OR concurrency_key NOT IN (SELECT concurrency_key "
            "FROM tasks WHERE namespace = :ns AND task_queue = :queue "
            "AND concurrency_key IS NOT NULL AND lease_owner IS NOT NULL "
            "GROUP BY concurrency_key HAVING COUNT(*) >= :per_key)) "
            f"{CLAIM_ORDER} LIMIT :limit",
            {
                "ns": namespace,
                "queue": task_queue,
                "kind": int(kind),
                "now": now,
                "limit": limit,
                "per_key": per_key,
            },
        ).fetchall()
        return [(int(r[0]), r[1]) for r in rows]

    async def running_by_key(
        self, namespace: str, task_queue: str, keys: Sequence[str]
    ) -> dict[str, int]:
        marks = ", ".join("?" * len(keys))
        rows = self.c.execute(
            "SELECT concurrency_key, COUNT(*) FROM tasks WHERE namespace = ? AND task_queue = ? "
            f"AND concurrency_key IN ({marks}) AND lease_owner IS NOT NULL "
            "GROUP BY concurrency_key",
            (namespace, task_queue, *keys),
        ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    async def claim_ids(self, task_ids: Sequence[int], owner: str, now: float) -> list[TaskRow]:
        if not task_ids:
            return []
        marks = ", ".join(f":t{i}" for i in range(len(task_ids)))
        params: dict[str, object] = {f"t{i}": t for i, t in enumerate(task_ids)}
        params.update(owner=owner, now=now, far=FAR)
        rows = self.c.execute(
            f"UPDATE tasks SET {LEASE_SQL} WHERE task_id IN ({marks}) "
            f"AND lease_owner IS NULL RETURNING {TASK_COLS}",
            params,
        ).fetchall()
        return [task_row(r) for r in rows]
