"""SQLite's SQL for the data lifecycle's primitives: namespaces, the runs retention may
delete, the references to offloaded payloads, and signals' idempotency keys (part of the
``Tx`` protocol)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from perdure._common.external import keys_in_rows
from perdure._store._rows import EXPIRED_RUNS
from perdure._store._types import NamespaceRow


class _SQLiteLifecycleTx:
    c: sqlite3.Connection

    def _note_payload_refs(self, run_id: str, blobs: Iterable[bytes]) -> None:
        """Record the offloaded payloads that rows just written for ``run_id`` refer to."""
        keys = keys_in_rows(blobs)
        if keys:
            self.c.executemany(
                "INSERT OR IGNORE INTO payload_refs (key, run_id) VALUES (?, ?)",
                [(key, run_id) for key in sorted(keys)],
            )

    async def add_signal_request(
        self, namespace: str, workflow_id: str, request_id: str, run_id: str
    ) -> bool:
        cur = self.c.execute(
            "INSERT INTO signal_requests (namespace, workflow_id, request_id, run_id) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (namespace, workflow_id, request_id, run_id),
        )
        return cur.rowcount == 1

    async def signal_request_run(
        self, namespace: str, workflow_id: str, request_id: str
    ) -> str | None:
        row = self.c.execute(
            "SELECT run_id FROM signal_requests WHERE namespace = ? AND workflow_id = ? "
            "AND request_id = ?",
            (namespace, workflow_id, request_id),
        ).fetchone()
        return None if row is None else str(row[0])

    async def get_namespace(self, name: str) -> NamespaceRow | None:
        row = self.c.execute(
            "SELECT name, retention, archive_uri FROM namespaces WHERE name = ?", (name,)
        ).fetchone()
        return NamespaceRow(*row) if row else None

    async def put_namespace(self, row: NamespaceRow) -> None:
        self.c.execute(
            "INSERT INTO namespaces (name, retention, archive_uri) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET retention = excluded.retention, "
            "archive_uri = excluded.archive_uri",
            (row.name, row.retention, row.archive_uri),
        )

    async def retained_namespaces(self) -> list[NamespaceRow]:
        rows = self.c.execute(
            "SELECT name, retention, archive_uri FROM namespaces WHERE retention IS NOT NULL "
            "ORDER BY name"
        ).fetchall()
        return [NamespaceRow(*r) for r in rows]

    async def expired_runs(
        self, namespace: str, closed_before: float, limit: int, among: Sequence[str] = ()
    ) -> list[str]:
        only = ""
        params: list[object] = [namespace, closed_before]
        if among:
            only = f" AND e.run_id IN ({', '.join('?' * len(among))})"
            params.extend(among)
        rows = self.c.execute(EXPIRED_RUNS.format(only=only, lock=""), [*params, limit])
        return [r[0] for r in rows.fetchall()]

    async def payload_garbage(self, limit: int) -> list[str]:
        rows = self.c.execute("SELECT key FROM payload_garbage ORDER BY key LIMIT ?", (limit,))
        return [r[0] for r in rows.fetchall()]

    async def payload_keys_referenced(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        rows = self.c.execute(
            f"SELECT DISTINCT key FROM payload_refs WHERE key IN ({', '.join('?' * len(keys))})",
            list(keys),
        )
        return {r[0] for r in rows.fetchall()}

    async def forget_payload_garbage(self, keys: Sequence[str]) -> None:
        self.c.executemany("DELETE FROM payload_garbage WHERE key = ?", [(k,) for k in keys])

    async def select(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.c.execute(sql, params).fetchall()]
