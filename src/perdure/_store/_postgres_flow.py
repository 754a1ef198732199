"""PostgreSQL's SQL for flow control (part of the ``Tx`` protocol): the fairness pass of a
new task, the token bucket of a queue's rate limit, and claims that skip concurrency keys at
their limit. See ``_flow`` for the rules. The limited claims of one queue take turns on a
transaction-scoped advisory lock, so two workers never both see a key below its limit."""

from __future__ import annotations

from collections.abc import Sequence

from perdure._store._postgres_batch import _BatchTx
from perdure._store._rows import EXEC_COLS, TASK_COLS, task_row
from perdure._store._types import TaskKind, TaskRow

_TASKS = frozenset({"tasks"})
_FAIRNESS = frozenset({"tasks", "fairness"})
_RATE = frozenset({"rate_limits"})
# An advisory lock class of its own (the two-key lock space does not meet the one-key one
# that migrations use).
_LOCK_CLASS = 7316
# What leasing a task sets ($1 the owner, $2 now); LEAST ignores the NULL deadlines.
LEASE_SQL = (
    "lease_owner = $1, lease_expires = $2 + t.lease_seconds, started_at = $2, "
    "async_pending = 0, deadline = LEAST($2 + t.lease_seconds, t.final_deadline, "
    "$2 + t.heartbeat_timeout)"
)
CLAIM_ORDER = "ORDER BY priority_key, fair_pass, visible_at, task_id"
_TASK_COLS_T = ", ".join(f"t.{c.strip()}" for c in TASK_COLS.split(","))
# The claim ($1 owner, $2 now, $3 namespace, $4 queue, $5 kind, $6 limit): one statement,
# one ordered scan of tasks_ready, skipping rows another claim holds
# (tests/flow/test_claim_plan.py).
_PICK = (
    "picked AS (SELECT task_id FROM tasks WHERE namespace = $3 "
    "AND task_queue = $4 AND kind = $5 AND lease_owner IS NULL AND visible_at <= $2 "
    f"{CLAIM_ORDER} LIMIT $6 FOR UPDATE SKIP LOCKED)"
)
_LEASE = (
    f"UPDATE tasks t SET {LEASE_SQL} "
    f"FROM picked WHERE t.task_id = picked.task_id RETURNING {_TASK_COLS_T}"
)
CLAIM_SQL = f"WITH {_PICK} {_LEASE}"
# The claim of workflow tasks, with their runs' rows (locked after the tasks, in run id
# order, as every operation takes them): the claim's next read, in the same round trip.
CLAIM_WITH_RUNS_SQL = (
    f"WITH {_PICK}, claimed AS ({_LEASE}), "
    f"e AS (SELECT {EXEC_COLS} FROM executions WHERE run_id IN (SELECT run_id FROM claimed) "
    "ORDER BY run_id FOR UPDATE) "
    "SELECT claimed.*, e.* FROM claimed LEFT JOIN e ON e.run_id = claimed.run_id"
)


class _PostgresFlowTx(_BatchTx):
    async def next_fair_pass(
        self,
        namespace: str,
        task_queue: str,
        kind: TaskKind,
        priority_key: int,
        fairness_key: str,
        stride: float,
    ) -> float:
        # The queue's virtual time: the lowest pass still waiting, else the highest reached.
        self.changed = True
        value = await self._fetchval(
            _FAIRNESS,
            "WITH v AS (SELECT COALESCE((SELECT MIN(fair_pass) FROM tasks WHERE namespace = $1 "
            "AND task_queue = $2 AND kind = $3 AND priority_key = $4 AND lease_owner IS NULL "
            "AND fair_pass > 0), (SELECT MAX(fair_pass) FROM fairness WHERE namespace = $1 "
            "AND task_queue = $2 AND kind = $3 AND priority_key = $4), 0) AS p) "
            "INSERT INTO fairness AS f (namespace, task_queue, kind, priority_key, "
            "fairness_key, fair_pass) SELECT $1, $2, $3, $4, $5, v.p + $6 FROM v "
            "ON CONFLICT (namespace, task_queue, kind, priority_key, fairness_key) DO UPDATE "
            "SET fair_pass = GREATEST(f.fair_pass, excluded.fair_pass - $6) + $6 "
            "RETURNING fair_pass",
            namespace,
            task_queue,
            int(kind),
            priority_key,
            fairness_key,
            stride,
        )
        return float(value)

    async def lock_queue(self, namespace: str, task_queue: str) -> None:
        await self.c.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || '/' || $2 || '/' "
            "|| $3))",
            _LOCK_CLASS,
            namespace,
            task_queue,
        )

    async def get_rate_bucket(self, namespace: str, task_queue: str) -> tuple[float, float] | None:
        row = await self._one(
            _RATE,
            "SELECT tokens, updated_at FROM rate_limits WHERE namespace = $1 AND task_queue = $2",
            namespace,
            task_queue,
        )
        return (float(row[0]), float(row[1])) if row else None

    async def put_rate_bucket(
        self, namespace: str, task_queue: str, tokens: float, updated_at: float
    ) -> None:
        await self._write(
            _RATE,
            "INSERT INTO rate_limits (namespace, task_queue, tokens, updated_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (namespace, task_queue) DO UPDATE SET "
            "tokens = excluded.tokens, updated_at = excluded.updated_at",
            namespace,
            task_queue,
            tokens,
            updated_at,
        )

    async def claim_candidates(
        self, kind: TaskKind, namespace: str, task_queue: str, now: float, limit: int, per_key: int
    ) -> list[tuple[int, str | None]]:
        rows = await self._fetch(
            _TASKS,
            "SELECT task_id, concurrency_key FROM tasks WHERE namespace = $1 "
            "AND task_queue = $2 AND kind = $3 AND lease_owner IS NULL AND visible_at <= $4 "
            "AND (concurrency_key IS NULL OR concurrency_key NOT IN (SELECT concurrency_key "
            "FROM tasks WHERE namespace = $1 AND task_queue = $2 "
            "AND concurrency_key IS NOT NULL AND lease_owner IS NOT NULL "
            "GROUP BY concurrency_key HAVING COUNT(*) >= $6)) "
            f"{CLAIM_ORDER} LIMIT $5 FOR UPDATE SKIP LOCKED",
            namespace,
            task_queue,
            int(kind),
            now,
            limit,
            per_key,
        )
        return [(int(r[0]), r[1]) for r in rows]

    async def running_by_key(
        self, namespace: str, task_queue: str, keys: Sequence[str]
    ) -> dict[str, int]:
        rows = await self._fetch(
            _TASKS,
            "SELECT concurrency_key, COUNT(*) FROM tasks WHERE namespace = $1 "
            "AND task_queue = $2 AND concurrency_key = ANY($3::text[]) "
            "AND lease_owner IS NOT NULL GROUP BY concurrency_key",
            namespace,
            task_queue,
            list(keys),
        )
        return {r[0]: int(r[1]) for r in rows}

    async def claim_ids(self, task_ids: Sequence[int], owner: str, now: float) -> list[TaskRow]:
        if not task_ids:
            return []
        self.changed = True
        rows = await self._fetch(
            _TASKS,
            f"UPDATE tasks t SET {LEASE_SQL} WHERE t.task_id = ANY($3::bigint[]) "
            f"AND t.lease_owner IS NULL RETURNING {_TASK_COLS_T}",
            owner,
            now,
            list(task_ids),
        )
        for r in rows:
            self.rows.put_task_row(r)
        return [self._seen(task_row(r)) for r in rows]
