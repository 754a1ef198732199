"""PostgreSQL's SQL for the schedules table (part of the ``Tx`` protocol)."""

from __future__ import annotations

from collections.abc import Sequence

from perdure._store._postgres_batch import _BatchTx
from perdure._store._rows import SCHEDULE_COLS, schedule_row, schedule_values
from perdure._store._schedule_state import ScheduleRow

_SCHEDULES = frozenset({"schedules"})
_EXECUTIONS = frozenset({"executions"})


class _ScheduleTx(_BatchTx):
    """The schedule primitives of ``_PostgresTx``: a row read in a write transaction is
    locked, so a schedule is fired, changed and watched by one transaction at a time."""

    async def get_schedule(self, namespace: str, schedule_id: str) -> ScheduleRow | None:
        row = await self._one(
            _SCHEDULES,
            f"SELECT {SCHEDULE_COLS} FROM schedules WHERE namespace = $1 AND schedule_id = $2"
            f"{self._for_update}",
            namespace,
            schedule_id,
        )
        return schedule_row(row) if row else None

    async def claim_schedule(
        self, namespace: str, schedule_id: str, now: float
    ) -> ScheduleRow | None:
        # Another process firing it holds the row: this one leaves it (it will be past due
        # by then) rather than wait.
        row = await self._one(
            _SCHEDULES,
            f"SELECT {SCHEDULE_COLS} FROM schedules WHERE namespace = $1 AND schedule_id = $2 "
            f"AND next_fire <= $3{self._skip_locked}",
            namespace,
            schedule_id,
            now,
        )
        return schedule_row(row) if row else None

    async def insert_schedule(self, row: ScheduleRow) -> None:
        await self._write(
            _SCHEDULES,
            f"INSERT INTO schedules ({SCHEDULE_COLS}) VALUES ($1, $2, $3, $4, $5)",
            *schedule_values(row),
        )

    async def update_schedule(self, row: ScheduleRow) -> None:
        ns, sid, data, version, next_fire = schedule_values(row)
        await self._hold(
            "schedules",
            (ns, sid),
            "UPDATE schedules SET data = $1, version = $2, next_fire = $3 "
            "WHERE namespace = $4 AND schedule_id = $5",
            data,
            version,
            next_fire,
            ns,
            sid,
        )

    async def delete_schedule(self, namespace: str, schedule_id: str) -> bool:
        self.changed = True
        deleted = await self._fetchval(
            _SCHEDULES,
            "WITH gone AS (DELETE FROM schedules WHERE namespace = $1 AND schedule_id = $2 "
            "RETURNING 1) SELECT count(*) FROM gone",
            namespace,
            schedule_id,
        )
        return bool(deleted)

    async def due_schedules(self, now: float, limit: int) -> list[tuple[str, str]]:
        rows = await self._fetch(
            _SCHEDULES,
            "SELECT namespace, schedule_id FROM schedules WHERE next_fire <= $1 "
            "ORDER BY next_fire LIMIT $2",
            now,
            limit,
        )
        return [(r[0], r[1]) for r in rows]

    async def list_schedules(self, namespace: str, limit: int, offset: int) -> list[ScheduleRow]:
        rows = await self._fetch(
            _SCHEDULES,
            f"SELECT {SCHEDULE_COLS} FROM schedules WHERE namespace = $1 "
            "ORDER BY schedule_id LIMIT $2 OFFSET $3",
            namespace,
            limit,
            offset,
        )
        return [schedule_row(r) for r in rows]

    async def open_workflow_ids(self, namespace: str, workflow_ids: Sequence[str]) -> set[str]:
        if not workflow_ids:
            return set()
        rows = await self._fetch(
            _EXECUTIONS,
            "SELECT workflow_id FROM executions WHERE namespace = $1 AND status = 1 "
            "AND workflow_id = ANY($2::text[])",
            namespace,
            list(workflow_ids),
        )
        return {r[0] for r in rows}
