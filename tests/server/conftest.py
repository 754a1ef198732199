from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pgutil import POSTGRES_URL, postgres_admin, with_schema
from server_support import InProcess, Running, in_process, server, worker, write_app


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """A `perdure server` process and a `perdure worker` process on a database of their own
    (SQLite file or PostgreSQL schema), shared by a module's tests (each uses ids of its
    own), with the token file beside them."""
    cwd = tmp_path_factory.mktemp("served")
    write_app(cwd)
    with (
        _database(request.param, cwd) as db,
        worker(db, cwd),
        server(db, cwd, "--token-file", str(cwd / "tokens")) as running,
    ):
        yield running


@contextmanager
def _database(kind: str, cwd: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{cwd / 'app.db'}"
        return
    schema = f"t_{uuid.uuid4().hex}"

    async def reachable() -> None:  # skips (or fails in CI) without a server
        await (await postgres_admin()).close()

    asyncio.run(reachable())
    try:
        yield with_schema(POSTGRES_URL, schema)
    finally:

        async def drop() -> None:
            admin = await postgres_admin()
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await admin.close()

        asyncio.run(drop())


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[InProcess]:
    """The app in process on a SQLite file (for what does not depend on the store)."""
    async with in_process(f"sqlite:///{tmp_path / 'app.db'}", tmp_path) as app:
        yield app


@pytest.fixture
async def on_store(db_url: str, tmp_path: Path) -> AsyncIterator[InProcess]:
    """The app in process on each store."""
    async with in_process(db_url, tmp_path) as app:
        yield app
