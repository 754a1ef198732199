"""PostgreSQL's SQL for the data lifecycle's primitives: namespaces, the runs retention may
delete, the references to offloaded payloads, and signals' idempotency keys (part of the
``Tx`` protocol)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

from perdure._common.external import keys_in_rows
from perdure._store._postgres_batch import _BatchTx
from perdure._store._rows import EXPIRED_RUNS
from perdure._store._types import NamespaceRow

_NAMESPACES = frozenset({"namespaces"})
_EXECUTIONS = frozenset({"executions"})
_PAYLOAD_REFS = frozenset({"payload_refs"})
_PAYLOAD_GARBAGE = frozenset({"payload_garbage"})
_SIGNAL_REQUESTS = frozenset({"signal_requests"})
_GAUGED = frozenset({"tasks", "executions", "timers", "schedules"})


def _numbered(sql: str) -> str:
    """``?`` placeholders as ``$1``, ``$2`` ..."""
    n = itertools.count(1)
    return re.sub(r"\?", lambda _m: f"${next(n)}", sql)


_EXPIRED = _numbered(EXPIRED_RUNS.format(only="", lock=" FOR UPDATE OF e SKIP LOCKED"))
_EXPIRED_AMONG = _numbered(
    EXPIRED_RUNS.format(only=" AND e.run_id = ANY(?::text[])", lock=" FOR UPDATE OF e SKIP LOCKED")
)


class _PostgresLifecycleTx(_BatchTx):
    async def _note_payload_refs(self, run_id: str, blobs: Iterable[bytes]) -> None:
        """Record the offloaded payloads that rows just written for ``run_id`` refer to."""
        keys = keys_in_rows(blobs)
        if keys:
            await self._hold(
                "payload_refs",
                None,
                "INSERT INTO payload_refs (key, run_id) SELECT unnest($1::text[]), $2 "
                "ON CONFLICT DO NOTHING",
                sorted(keys),
                run_id,
            )

    async def add_signal_request(
        self, namespace: str, workflow_id: str, request_id: str, run_id: str
    ) -> bool:
        # Not held back: whether the key is new decides what the signal writes. A concurrent
        # transaction inserting the same key makes this wait for it, then do nothing.
        added = await self._fetchval(
            _SIGNAL_REQUESTS,
            "INSERT INTO signal_requests (namespace, workflow_id, request_id, run_id) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
            namespace,
            workflow_id,
            request_id,
            run_id,
        )
        return added is not None

    async def signal_request_run(
        self, namespace: str, workflow_id: str, request_id: str
    ) -> str | None:
        found = await self._fetchval(
            _SIGNAL_REQUESTS,
            "SELECT run_id FROM signal_requests WHERE namespace = $1 AND workflow_id = $2 "
            "AND request_id = $3",
            namespace,
            workflow_id,
            request_id,
        )
        return None if found is None else str(found)

    async def get_namespace(self, name: str) -> NamespaceRow | None:
        row = await self._one(
            _NAMESPACES,
            "SELECT name, retention, archive_uri FROM namespaces WHERE name = $1",
            name,
        )
        return NamespaceRow(*row) if row else None

    async def put_namespace(self, row: NamespaceRow) -> None:
        await self._hold(
            "namespaces",
            None,
            "INSERT INTO namespaces (name, retention, archive_uri) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET retention = EXCLUDED.retention, "
            "archive_uri = EXCLUDED.archive_uri",
            row.name,
            row.retention,
            row.archive_uri,
        )

    async def retained_namespaces(self) -> list[NamespaceRow]:
        rows = await self._fetch(
            _NAMESPACES,
            "SELECT name, retention, archive_uri FROM namespaces WHERE retention IS NOT NULL "
            "ORDER BY name",
        )
        return [NamespaceRow(*r) for r in rows]

    async def expired_runs(
        self, namespace: str, closed_before: float, limit: int, among: Sequence[str] = ()
    ) -> list[str]:
        # Locked (in a write transaction) so that two sweeps never take the same run.
        args: list[object] = [namespace, closed_before, limit]
        sql = _EXPIRED
        if among:
            sql, args = _EXPIRED_AMONG, [namespace, closed_before, list(among), limit]
        if not self._for_update:
            sql = sql.replace(" FOR UPDATE OF e SKIP LOCKED", "")
        rows = await self._fetch(_EXECUTIONS, sql, *args)
        return [r[0] for r in rows]

    async def payload_garbage(self, limit: int) -> list[str]:
        rows = await self._fetch(
            _PAYLOAD_GARBAGE, "SELECT key FROM payload_garbage ORDER BY key LIMIT $1", limit
        )
        return [r[0] for r in rows]

    async def payload_keys_referenced(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        rows = await self._fetch(
            _PAYLOAD_REFS,
            "SELECT DISTINCT key FROM payload_refs WHERE key = ANY($1::text[])",
            list(keys),
        )
        return {r[0] for r in rows}

    async def forget_payload_garbage(self, keys: Sequence[str]) -> None:
        await self._hold(
            "payload_garbage",
            None,
            "DELETE FROM payload_garbage WHERE key = ANY($1::text[])",
            list(keys),
        )

    async def select(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self._fetch(_GAUGED, _numbered(sql), *params)]
