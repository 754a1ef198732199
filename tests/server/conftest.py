from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from server_support import Running, server, worker, write_app

from perdure.client import Client
from perdure.server import create_app
from perdure.server._tokens import Role, append_token


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Running]:
    """A `perdure server` process and a `perdure worker` process on a database of the test's
    own (SQLite file or PostgreSQL schema), with the token file in the test's directory."""
    write_app(tmp_path)
    with (
        worker(db_url, tmp_path),
        server(db_url, tmp_path, "--token-file", str(tmp_path / "tokens")) as running,
    ):
        yield running


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
