"""`perdure server` as a command: the token file at first start, `token create`, loopback-only
`--insecure-no-auth`, the workflows module, a clean stop."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from server_support import PERDURE, env_for, server, start_server, stop, write_app

from perdure.cli._server import _shown
from perdure.client import Client

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]


def create_database(path: Path) -> str:
    url = f"sqlite:///{path}"

    async def make() -> None:
        await (await Client.connect(url)).close()

    asyncio.run(make())
    return url


def test_the_first_start_makes_a_private_token_file_and_prints_a_login_url(
    tmp_path: Path,
) -> None:
    db = create_database(tmp_path / "app.db")
    token_file = tmp_path / "app.db.tokens"
    running = start_server(db, tmp_path, log_level="INFO")  # with the access log
    try:
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = running.login_token
        assert token is not None
        entries = [line.split() for line in token_file.read_text().splitlines()]
        assert [token, "write"] in entries
        login = next(line for line in running.banner if "?token=" in line).strip()
        assert login == f"{running.url}/?token={token}"
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", running.url)
        with httpx.Client(base_url=running.url) as http:
            assert http.get("/api/v1/workflows").status_code == 401
            opened = http.get(f"/?token={token}")
            assert opened.status_code == 303
            assert opened.headers["location"] == "/"
            cookie = http.cookies.get("perdure_session")
            assert cookie and token not in cookie
            assert http.get("/api/v1/session").json()["auth"] == "cookie"
        running.process.send_signal(signal.SIGTERM)
        out, _ = running.process.communicate(timeout=30)
        assert running.process.returncode == 0, out
        assert "perdure server: stopped" in out
        # The login line is not repeated, and the access log redacts the login URL's token.
        assert token not in out
        assert '"GET /?token=[redacted] HTTP/1.1" 303' in out
    finally:
        stop(running.process)
    before = token_file.read_text()
    with server(db, tmp_path) as again:
        assert again.login_token is None
        assert not any("token=" in line for line in again.banner)
        with again.client(token) as http:
            assert http.get("/api/v1/workflows").status_code == 200
    assert token_file.read_text() == before


def test_on_postgresql_the_token_file_is_in_the_home_directory(
    postgres_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**env_for(postgres_url, tmp_path), "HOME": str(home)}
    process = subprocess.Popen(
        [PERDURE, "server", "--port", "0", "--db", postgres_url],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline()]
        while "API docs" not in lines[-1] and lines[-1]:
            lines.append(process.stdout.readline())
        assert any("?token=" in line for line in lines), lines
        tokens = home / ".perdure" / "tokens"
        assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    finally:
        stop(process)


def test_token_create_adds_a_token_the_running_server_accepts(tmp_path: Path) -> None:
    db = create_database(tmp_path / "app.db")
    with server(db, tmp_path) as running:
        made = subprocess.run(
            [PERDURE, "server", "token", "create", "--role", "read", "--db", db],
            cwd=tmp_path,
            env=env_for(db, tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        assert f"{token} read" in (tmp_path / "app.db.tokens").read_text()
        assert "a read token" in made.stderr
        with running.client(token) as http:
            assert http.get("/api/v1/session").json() == {
                "auth": "bearer",
                "role": "read",
                "csrf_token": None,
            }
            start = {"workflow_type": "X", "task_queue": "q"}
            assert http.post("/api/v1/workflows", json=start).status_code == 403


def test_insecure_no_auth_only_on_loopback(tmp_path: Path) -> None:
    db = create_database(tmp_path / "app.db")
    for host in ("0.0.0.0", "::", "192.0.2.1"):
        refused = subprocess.run(
            [PERDURE, "server", "--db", db, "--host", host, "--insecure-no-auth"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 2
        assert f"refused on --host {host}" in refused.stderr
    with server(db, tmp_path, "--insecure-no-auth") as running:
        assert "without authentication" in running.banner[0]
        with running.client(None) as http:
            assert http.get("/api/v1/workflows").status_code == 200
    assert not (tmp_path / "app.db.tokens").exists()


def test_the_workflows_module_is_loaded(tmp_path: Path) -> None:
    db = create_database(tmp_path / "app.db")
    write_app(tmp_path)
    with server(db, tmp_path, "server_app") as running, running.client(None) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
    missing = subprocess.run(
        [PERDURE, "server", "--db", db, "no_such_module"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1
    assert "Cannot import 'no_such_module'" in missing.stderr


def test_a_database_password_is_not_printed() -> None:
    assert _shown("postgresql://app:s3cret@db:5432/prod") == "postgresql://app:***@db:5432/prod"
    assert _shown("sqlite:///app.db") == "sqlite:///app.db"
