from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pgutil import POSTGRES_URL, postgres_admin, with_schema
from server_support import Running, server, worker, write_app

from perdure.client import Client
from perdure.server import create_app
from perdure.server._tokens import Role, append_token


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


@dataclass
class InProcess:
    """``create_app`` on a client of the test's own, reached through httpx's ASGI transport."""

    http: httpx.AsyncClient
    client: Client
    write: str
    read: str
    token_file: Path

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def in_process(db: str, tmp_path: Path, **options: object) -> AsyncIterator[InProcess]:
    token_file = tmp_path / "tokens"
    write, _ = append_token(token_file, Role.WRITE)
    read, _ = append_token(token_file, Role.READ)
    client = await Client.connect(db)
    try:
        app = create_app(client, token_file=token_file, **options)  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield InProcess(http, client, write, read, token_file)
    finally:
        await client.close()


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
