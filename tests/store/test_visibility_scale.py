"""Listing at scale, on SQLite and PostgreSQL: the indexes of schema version 7 (added to a
database made at version 6 by opening it, its runs still listed), and STARTS_WITH as an
index range on SQLite matching exactly the ids Python's ``startswith`` does."""

from __future__ import annotations

import sqlite3

from pgutil import postgres_admin

from perdure._common.status import WorkflowExecutionStatus
from perdure._store import open_store
from perdure._store._postgres_schema import MIGRATIONS as POSTGRES_MIGRATIONS
from perdure._store._rows import EXEC_COLS, execution_values
from perdure._store._schema import LATEST_VERSION
from perdure._store._schema import MIGRATIONS as SQLITE_MIGRATIONS
from perdure._store._types import Execution

LISTING_INDEXES = {
    "executions_by_start",
    "executions_by_status",
    "executions_by_type",
    "executions_by_close",
    "executions_by_workflow_id",
}


def _run(run_id: str, workflow_id: str, start: float, closed: bool = False) -> Execution:
    return Execution(
        run_id=run_id,
        namespace="default",
        workflow_id=workflow_id,
        workflow_type="Order" if closed else "Refund",
        task_queue="q",
        status=WorkflowExecutionStatus.COMPLETED if closed else WorkflowExecutionStatus.RUNNING,
        next_event_id=3,
        start_time=start,
        task_timeout=10.0,
        close_time=start + 1 if closed else None,
        first_run_id=run_id,
    )


def _only(
    columns: list[str], args: list[tuple[object, ...]]
) -> tuple[str, list[tuple[object, ...]]]:
    """The INSERT's columns and values cut to those the older table has (later versions
    add columns, such as flow control's ``priority``)."""
    all_columns = [c.strip() for c in EXEC_COLS.split(",")]
    keep = [i for i, c in enumerate(all_columns) if c in columns]
    names = ", ".join(all_columns[i] for i in keep)
    return names, [tuple(row[i] for i in keep) for row in args]


async def _sql(url: str, statements: list[str], args: list[tuple[object, ...]]) -> None:
    """Statements (then an INSERT of executions rows, ``args``) run as a person would."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            for statement in statements:
                conn.execute(statement)
            present = [r[1] for r in conn.execute("PRAGMA table_info(executions)")]
            names, rows = _only(present, args)
            marks = ", ".join("?" * len(names.split(",")))
            conn.executemany(f"INSERT INTO executions ({names}) VALUES ({marks})", rows)
            conn.commit()
        finally:
            conn.close()
        return
    admin = await postgres_admin()
    try:
        schema = url.rsplit("schema=", 1)[1]
        await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await admin.execute(f'SET search_path TO "{schema}"')
        for statement in statements:
            await admin.execute(statement)
        present = [
            r["column_name"]
            for r in await admin.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = $1 AND table_name = 'executions'",
                schema,
            )
        ]
        names, rows = _only(present, args)
        marks = ", ".join(f"${i + 1}" for i in range(len(names.split(","))))
        await admin.executemany(f"INSERT INTO executions ({names}) VALUES ({marks})", rows)
    finally:
        await admin.close()


async def _indexes(url: str) -> set[str]:
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        finally:
            conn.close()
        return {r[0] for r in rows}
    admin = await postgres_admin()
    try:
        rows = await admin.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1", url.rsplit("schema=", 1)[1]
        )
    finally:
        await admin.close()
    return {r[0] for r in rows}


async def test_a_version_6_database_gets_the_listing_indexes_and_keeps_its_runs(
    db_url: str,
) -> None:
    migrations = SQLITE_MIGRATIONS if db_url.startswith("sqlite:") else POSTGRES_MIGRATIONS
    runs = [_run(f"r{i}", f"wf-{i}", 1000.0 + i, closed=i % 2 == 0) for i in range(6)]
    version_6 = [s for step in migrations[:6] for s in step]
    version_6 += [
        "CREATE TABLE perdure_schema (version INTEGER NOT NULL)",
        "INSERT INTO perdure_schema (version) VALUES (6)",
    ]
    await _sql(db_url, version_6, [execution_values(ex) for ex in runs])
    assert "executions_by_status" not in await _indexes(db_url)

    store = open_store(db_url)
    try:
        page = await store.list_workflows("default", "ExecutionStatus = 'Running'", 2)
        assert [ex.run_id for ex in page.executions] == ["r5", "r3"]
        rest = await store.list_workflows(
            "default", "ExecutionStatus = 'Running'", 2, page.next_page_token
        )
        assert [ex.run_id for ex in rest.executions] == ["r1"]
        assert await store.count_workflows("default", "WorkflowType = 'Order'") == 3
    finally:
        await store.close()
    expected = LISTING_INDEXES | (
        set() if db_url.startswith("sqlite:") else {"executions_by_id_prefix"}
    )
    assert expected <= await _indexes(db_url)
    if db_url.startswith("sqlite:"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            assert conn.execute("SELECT version FROM perdure_schema").fetchall() == [
                (LATEST_VERSION,)
            ]
        finally:
            conn.close()


IDS = [
    "a",
    "ab",
    "abc",
    "aB",
    "AB",
    "ac",
    "a%c",
    "a_c",
    "ab\U0010ffff",
    "ab\U0010ffffz",
    "a\U0010ffff",
    "a\U0010ffffb",
    "b",
    "\U0010ffff",
    "é-1",
    "éa",
    "f",
]
PREFIXES = ["a", "ab", "aB", "a%", "a_", "ab\U0010ffff", "a\U0010ffff", "\U0010ffff", "é", "", "z"]


async def test_starts_with_matches_exactly_the_ids_with_that_prefix(db_url: str) -> None:
    store = open_store(db_url)
    try:

        async def insert(tx: object, fx: object) -> None:
            for i, workflow_id in enumerate(IDS):
                await tx.insert_execution(_run(f"r{i}", workflow_id, float(i), closed=True))  # type: ignore[attr-defined]

        await store.transact(insert)  # type: ignore[arg-type]
        for prefix in PREFIXES:
            literal = prefix.replace("'", "''")
            for negated in (False, True):
                query = f"WorkflowId {'NOT ' if negated else ''}STARTS_WITH '{literal}'"
                page = await store.list_workflows("default", query, 100)
                found = sorted(ex.workflow_id for ex in page.executions)
                expected = sorted(i for i in IDS if i.startswith(prefix) != negated)
                assert found == expected, query
    finally:
        await store.close()
