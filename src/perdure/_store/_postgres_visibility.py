"""PostgreSQL's SQL for visibility (part of the ``Tx`` protocol): a run's search attributes,
the namespace's registered attribute types, and the listings and counts ``_visibility``
compiles queries into."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perdure._store._postgres_batch import _BatchTx
from perdure._store._rows import EXEC_COLS, execution_row
from perdure._store._types import Execution
from perdure._store._visibility_driver import Driver

EXEC_COLS_E = ", ".join(f"e.{c.strip()}" for c in EXEC_COLS.split(","))
_EXECUTIONS = frozenset({"executions"})
_SEARCH_ATTRIBUTES = frozenset({"search_attributes"})
_SEARCH_ATTRIBUTE_TYPES = frozenset({"search_attribute_types"})
_VISIBILITY = _EXECUTIONS | _SEARCH_ATTRIBUTES


class _PostgresVisibilityTx(_BatchTx):
    async def set_search_attributes(
        self, run_id: str, values: Mapping[str, list[tuple[str | None, float | None, int | None]]]
    ) -> None:
        for name, rows in values.items():
            # Both parts see the rows as they were: the old values go, the new ones come.
            await self._write(
                _SEARCH_ATTRIBUTES,
                "WITH gone AS (DELETE FROM search_attributes WHERE run_id = $1 AND name = $2) "
                "INSERT INTO search_attributes (run_id, name, value_text, value_num, value_bool) "
                "SELECT $1, $2, * FROM unnest($3::text[], $4::float8[], $5::int[])",
                run_id,
                name,
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
            )

    async def search_attribute_types(self, namespace: str) -> dict[str, str]:
        rows = await self._fetch(
            _SEARCH_ATTRIBUTE_TYPES,
            "SELECT name, type FROM search_attribute_types WHERE namespace = $1",
            namespace,
        )
        return {r[0]: r[1] for r in rows}

    async def register_search_attribute(self, namespace: str, name: str, type_name: str) -> None:
        await self._hold(
            "search_attribute_types",
            None,
            "INSERT INTO search_attribute_types (namespace, name, type) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING",
            namespace,
            name,
            type_name,
        )

    async def list_executions(
        self,
        namespace: str,
        where: str,
        params: list[Any],
        order_by: str,
        limit: int,
        among: Driver | None = None,  # PostgreSQL's planner chooses where to start itself
    ) -> list[Execution]:
        # ``where`` numbers its placeholders from $2: the namespace is $1.
        n = len(params) + 2
        rows = await self._fetch(
            _VISIBILITY,
            f"SELECT {EXEC_COLS_E} FROM executions e WHERE e.namespace = $1 AND ({where}) "
            f"ORDER BY {order_by} LIMIT ${n}",
            namespace,
            *params,
            limit,
        )
        return [execution_row(r) for r in rows]

    async def count_executions(
        self,
        namespace: str,
        where: str,
        params: list[Any],
        limit: int | None = None,
        among: Driver | None = None,
    ) -> int:
        # ``where`` numbers its placeholders from $2 (the namespace is $1); the limit follows.
        rows = f"SELECT 1 FROM executions e WHERE e.namespace = $1 AND ({where})"
        if limit is not None:
            rows += f" LIMIT ${len(params) + 2}"
        bound = [namespace, *params, *([] if limit is None else [limit])]
        count = await self._fetchval(_VISIBILITY, f"SELECT COUNT(*) FROM ({rows}) t", *bound)
        return int(count)

    async def count_executions_by(
        self,
        namespace: str,
        where: str,
        params: list[Any],
        column: str,
        among: Driver | None = None,
    ) -> list[tuple[Any, int]]:
        rows = await self._fetch(
            _VISIBILITY,
            f"SELECT {column}, COUNT(*) FROM executions e WHERE e.namespace = $1 AND ({where}) "
            f"GROUP BY {column}",
            namespace,
            *params,
        )
        return [(r[0], int(r[1])) for r in rows]
