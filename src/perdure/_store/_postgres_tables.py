"""PostgreSQL's SQL for the primitives of the smaller tables (part of the ``Tx`` protocol):
updates, timers, and the answers to queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perdure._common.events import encode_attributes
from perdure._store._postgres_lifecycle import _PostgresLifecycleTx
from perdure._store._rows import UPDATE_INSERT, update_insert_values, update_row
from perdure._store._types import QueryResult, UpdateRow, UpdateState

_UPDATE_COLS = "run_id, update_id, name, input, state, outcome"
_UPDATES = frozenset({"updates"})
_TIMERS = frozenset({"timers"})
_QUERIES = frozenset({"tasks", "query_results"})


class _PostgresTablesTx(_PostgresLifecycleTx):
    async def move_requested_updates(self, from_run_id: str, to_run_id: str) -> None:
        await self._hold(
            "updates",
            None,
            "UPDATE updates SET run_id = $1 WHERE run_id = $2 AND state = 0",
            to_run_id,
            from_run_id,
        )

    async def get_update(self, run_id: str, update_id: str) -> UpdateRow | None:
        row = await self._one(
            _UPDATES,
            f"SELECT {_UPDATE_COLS} FROM updates WHERE run_id = $1 AND update_id = $2",
            run_id,
            update_id,
        )
        return update_row(row) if row else None

    async def insert_update(self, row: UpdateRow, now: float) -> None:
        values = update_insert_values(row, now)
        await self._note_payload_refs(row.run_id, [values[3]])
        marks = ", ".join(f"${n}" for n in range(1, len(values) + 1))
        await self._hold("updates", None, UPDATE_INSERT.format(marks), *values)

    async def set_update_state(
        self, run_id: str, update_id: str, state: UpdateState, outcome: dict[str, Any] | None
    ) -> None:
        await self._hold(
            "updates",
            None,
            "UPDATE updates SET state = $1, outcome = $2 WHERE run_id = $3 AND update_id = $4",
            int(state),
            encode_attributes(outcome) if outcome is not None else None,
            run_id,
            update_id,
        )

    async def updates_in_state(self, run_id: str, states: Sequence[UpdateState]) -> list[UpdateRow]:
        rows = await self._fetch(
            _UPDATES,
            f"SELECT {_UPDATE_COLS} FROM updates WHERE run_id = $1 AND state = ANY($2::int[]) "
            "ORDER BY requested_at, seq",
            run_id,
            [int(s) for s in states],
        )
        return [update_row(r) for r in rows]

    async def insert_timer(
        self, run_id: str, seq: int, fire_at: float, started_event_id: int
    ) -> None:
        await self._hold(
            "timers",
            None,
            "INSERT INTO timers (run_id, seq, fire_at, started_event_id) VALUES ($1, $2, $3, $4)",
            run_id,
            seq,
            fire_at,
            started_event_id,
        )

    async def delete_timer(self, run_id: str, seq: int) -> int | None:
        self.changed = True
        started = await self._fetchval(
            _TIMERS,
            "DELETE FROM timers WHERE run_id = $1 AND seq = $2 RETURNING started_event_id",
            run_id,
            seq,
        )
        return int(started) if started is not None else None

    async def due_timers(self, now: float, limit: int) -> list[tuple[str, int, int]]:
        rows = await self._fetch(
            _TIMERS,
            "SELECT run_id, seq, started_event_id FROM timers WHERE fire_at <= $1 "
            f"ORDER BY fire_at, run_id, seq LIMIT $2{self._skip_locked}",
            now,
            limit,
        )
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    async def put_query_result(self, query_id: int, result: QueryResult) -> None:
        await self._write(
            _QUERIES,
            "WITH answered AS (DELETE FROM tasks WHERE task_id = $1) "
            "INSERT INTO query_results (query_id, ok, result, error) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (query_id) DO UPDATE SET ok = EXCLUDED.ok, result = EXCLUDED.result, "
            "error = EXCLUDED.error",
            query_id,
            int(result.ok),
            encode_attributes({"r": result.result}) if result.result is not None else None,
            result.error,
        )
        self.rows.tasks.pop(query_id, None)

    async def delete_query(self, query_id: int) -> None:
        await self._write(
            _QUERIES,
            "WITH task AS (DELETE FROM tasks WHERE task_id = $1) "
            "DELETE FROM query_results WHERE query_id = $1",
            query_id,
        )
        self.rows.tasks.pop(query_id, None)
