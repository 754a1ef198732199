"""A database as an older perdure left it: the schema's first migrations only, and rows
written by hand the way that version wrote them, on SQLite or in a PostgreSQL schema. What
the tests of a migration start from."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pgutil import postgres_admin

from perdure._store import _postgres_schema as pg_schema
from perdure._store import _schema as sqlite_schema

Row = tuple[str, tuple[object, ...]]  # a statement with ``?`` marks, and its arguments


async def make_old_database(url: str, version: int, rows: Sequence[Row]) -> None:
    """Build the schema at ``version`` for ``url`` (a SQLite file's, or a PostgreSQL URL
    with ``?schema=``), then run ``rows``; the database records that version."""
    rows = [
        *rows,
        ("CREATE TABLE perdure_schema (version INTEGER NOT NULL)", ()),
        (f"INSERT INTO perdure_schema (version) VALUES ({version})", ()),
    ]
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        for statements in sqlite_schema.MIGRATIONS[:version]:
            for statement in statements:
                conn.execute(statement)
        for statement, args in rows:
            conn.execute(statement, args)
        conn.commit()
        conn.close()
        return
    admin = await postgres_admin()
    try:
        schema = url.rsplit("schema=", 1)[1]
        await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await admin.execute(f'SET search_path TO "{schema}"')
        for statements in pg_schema.MIGRATIONS[:version]:
            for statement in statements:
                await admin.execute(statement)
        for statement, args in rows:
            await admin.execute(_numbered(statement), *args)
    finally:
        await admin.close()


def _numbered(statement: str) -> str:
    """``?`` marks as PostgreSQL's ``$1``, ``$2``, ..."""
    parts = statement.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
