"""Opening a database: processes migrating a new one together, a schema damaged by hand,
and the parameters a URL takes, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from pgutil import postgres_admin

from perdure._common.clock import VirtualClock
from perdure._errors import InvalidURLError, PerdureError, SchemaError
from perdure._store import Store, open_store
from perdure._store._schema import LATEST_VERSION
from perdure.activity import defn
from perdure.client import Client
from perdure.worker import Worker


@defn
async def noop() -> None:
    pass


PROCESSES = 3
TRIALS = 20  # on SQLite; PostgreSQL's migrations always took a lock, and each trial costs more
POSTGRES_TRIALS = 5


async def _first_use(url: str) -> None:
    store = open_store(url)
    try:
        await store.closed_among(["x"])  # a PostgreSQL store connects (and migrates) on first use
    finally:
        await store.close()


def _open_together(urls: list[str], barrier: Any, results: Any) -> None:
    """In each of the processes: open each database at the same moment as the others."""
    for url in urls:
        barrier.wait(timeout=30)
        try:
            asyncio.run(_first_use(url))
        except Exception as exc:
            results.put(f"{url}: {type(exc).__name__}: {exc}")
        else:
            results.put(None)


def _schema(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


async def _drop_schemas(urls: list[str]) -> None:
    admin = await postgres_admin()
    try:
        for url in urls:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{_schema(url)}" CASCADE')
    finally:
        await admin.close()


async def test_processes_opening_one_new_database_together_all_succeed(db_url: str) -> None:
    if db_url.startswith("sqlite:"):
        urls = [db_url.replace("store.db", f"store-{i}.db") for i in range(TRIALS)]
    else:
        urls = [f"{db_url}_{i}" for i in range(POSTGRES_TRIALS)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=_open_together, args=(urls, barrier, results)) for _ in range(PROCESSES)
    ]
    try:
        for p in processes:
            p.start()
        outcomes = [results.get(timeout=60) for _ in range(PROCESSES * len(urls))]
    finally:
        for p in processes:
            p.join(timeout=30)
        if not db_url.startswith("sqlite:"):
            await _drop_schemas(urls)
    assert [o for o in outcomes if o is not None] == []
    assert all(p.exitcode == 0 for p in processes)


# -- a schema changed by hand ---------------------------------------------------------------


async def _run_sql(url: str, *statements: str) -> None:
    """Statements run on the database behind ``url``, as a person with a SQL shell would."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()
        return
    admin = await postgres_admin()
    try:
        await admin.execute(f'SET search_path TO "{_schema(url)}"')
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()


async def _open_fails(url: str) -> str:
    store: Store | None = None
    with pytest.raises(SchemaError) as caught:
        store = open_store(url)
        await store.closed_among(["x"])
    if store is not None:
        await store.close()
    return str(caught.value)


async def test_a_deleted_version_row_is_named_with_the_row_to_put_back(db_url: str) -> None:
    await _first_use(db_url)
    await _run_sql(db_url, "DELETE FROM perdure_schema")

    message = await _open_fails(db_url)

    assert "no perdure schema version" in message
    assert f"INSERT INTO perdure_schema (version) VALUES ({LATEST_VERSION})" in message
    # Put back as the message says, the database opens again.
    await _run_sql(db_url, f"INSERT INTO perdure_schema (version) VALUES ({LATEST_VERSION})")
    await _first_use(db_url)


async def test_a_dropped_table_is_named_at_open(db_url: str) -> None:
    await _first_use(db_url)
    await _run_sql(db_url, "DROP TABLE timers")

    message = await _open_fails(db_url)

    assert f"at perdure schema version {LATEST_VERSION}, but table timers is missing" in message
    assert "backup" in message


async def test_a_dropped_column_is_named_at_open(db_url: str) -> None:
    await _first_use(db_url)
    await _run_sql(db_url, "ALTER TABLE executions DROP COLUMN memo")

    message = await _open_fails(db_url)

    assert "column executions.memo is missing" in message


async def test_another_applications_table_of_the_same_name_is_not_migrated_over(
    db_url: str,
) -> None:
    if db_url.startswith("sqlite:"):
        sqlite3.connect(db_url[len("sqlite:///") :]).close()  # an application's own file
    else:
        admin = await postgres_admin()
        await admin.execute(f'CREATE SCHEMA "{_schema(db_url)}"')
        await admin.close()
    await _run_sql(db_url, "CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT)")

    message = await _open_fails(db_url)

    assert "tables named like perdure's (tasks)" in message
    assert "another application's" in message


async def test_two_version_rows_are_refused(db_url: str) -> None:
    await _first_use(db_url)
    await _run_sql(db_url, "INSERT INTO perdure_schema (version) VALUES (1)")

    message = await _open_fails(db_url)

    assert "2 rows in perdure_schema" in message


# -- URL parameters ---------------------------------------------------------------------------


async def _client_with_a_running_workflow(url: str) -> None:
    client = await Client.connect(url)
    try:
        await client.start_workflow("W", id="wf", task_queue="q")
    finally:
        await client.close()


async def test_a_read_only_sqlite_url_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    await _client_with_a_running_workflow(f"sqlite:///{path}")
    before = path.read_bytes()

    client = await Client.connect(f"sqlite:///{path}?mode=ro", clock=VirtualClock(0.0))
    try:
        handle = client.get_workflow_handle("wf")
        assert (await handle.describe()).workflow_type == "W"
        assert [e.id async for e in client.list_workflows("WorkflowType = 'W'")] == ["wf"]
        assert (await client.count_workflows()).count == 1
        assert len((await handle.fetch_history()).events) > 0
        with pytest.raises(PerdureError, match=r"opened read-only \(\?mode=ro\)"):
            await client.start_workflow("W", id="other", task_queue="q")
        with pytest.raises(PerdureError, match="read-only"):
            await handle.signal("s")
    finally:
        await client.close()
    assert path.read_bytes() == before


async def test_a_worker_refuses_a_read_only_client(tmp_path: Path) -> None:
    await _client_with_a_running_workflow(f"sqlite:///{tmp_path / 'app.db'}")
    client = await Client.connect(f"sqlite:///{tmp_path / 'app.db'}?mode=ro")
    try:
        with pytest.raises(ValueError, match=r"opened it read-only \(\?mode=ro\)"):
            Worker(client, task_queue="q", activities=[noop])
    finally:
        await client.close()


async def test_a_read_only_sqlite_url_never_creates_or_migrates(tmp_path: Path) -> None:
    with pytest.raises(PerdureError, match=r"does not exist, and \?mode=ro does not create it"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}?mode=ro")
    assert not (tmp_path / "missing.db").exists()

    sqlite3.connect(tmp_path / "empty.db").close()
    with pytest.raises(PerdureError, match="has no perdure tables and is opened read-only"):
        open_store(f"sqlite:///{tmp_path / 'empty.db'}?mode=ro")


async def test_a_sqlite_url_in_rw_mode_needs_the_file(tmp_path: Path) -> None:
    with pytest.raises(PerdureError, match=r"\?mode=rw does not create it"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}?mode=rw")
    await _first_use(f"sqlite:///{tmp_path / 'app.db'}")
    await _first_use(f"sqlite:///{tmp_path / 'app.db'}?mode=rw")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("cache=shared", "unknown parameter 'cache'; the only one is mode"),
        ("mode=ro&timeout=5", "unknown parameter 'timeout'"),
        ("mode=readonly", "needs one mode of: ?mode=ro (read-only"),
        ("mode=ro&mode=rw", "needs one mode of"),
    ],
)
def test_a_sqlite_url_refuses_a_parameter_it_does_not_know(
    tmp_path: Path, query: str, expected: str
) -> None:
    with pytest.raises(InvalidURLError) as caught:
        open_store(f"sqlite:///{tmp_path / 'app.db'}?{query}")
    assert expected in str(caught.value)
    assert not (tmp_path / "app.db").exists()


def test_an_in_memory_sqlite_url_takes_no_mode() -> None:
    with pytest.raises(InvalidURLError, match="not to an in-memory database"):
        open_store("sqlite://:memory:?mode=ro")


async def test_a_postgresql_url_refuses_a_parameter_neither_asyncpg_nor_the_server_knows(
    postgres_url: str,
) -> None:
    name = f"no_such_setting_{uuid.uuid4().hex[:8]}"
    store = open_store(f"{postgres_url}&{name}=1")
    try:
        with pytest.raises(PerdureError, match=f'unrecognized configuration parameter "{name}"'):
            await store.closed_among(["x"])
    finally:
        await store.close()
