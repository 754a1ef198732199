"""Running ``perdure server`` as a user does: a real server process on a free port of
127.0.0.1, a real ``perdure worker`` process, a real database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from perdure.client import Client
from perdure.server import create_app
from perdure.server._tokens import Role, append_token

PERDURE = str(Path(sys.executable).parent / "perdure")

# The workflows the server tests drive, run by a `perdure worker` process.
APP = textwrap.dedent(
    """
    from datetime import timedelta
    from pathlib import Path

    from perdure import activity, workflow
    from perdure.exceptions import ApplicationError


    @activity.defn
    async def charge(order_id: str, amount: float) -> str:
        return f"receipt-{order_id}"


    @activity.defn
    async def ask_a_human(order_id: str) -> str:
        # The task token goes where a person (here: the test) finds it.
        Path(f"token-{order_id}.txt").write_bytes(activity.info().task_token)
        activity.raise_complete_async()


    @workflow.defn
    class Checkout:
        def __init__(self) -> None:
            self.approved_by = ""
            self.discount = 0

        @workflow.run
        async def run(self, order_id: str, amount: float) -> str:
            receipt = await workflow.execute_activity(
                charge, args=[order_id, amount], start_to_close_timeout=timedelta(seconds=30)
            )
            await workflow.wait_condition(lambda: bool(self.approved_by))
            if order_id.startswith("bad"):
                raise ApplicationError("card declined", {"code": 51}, type="Declined")
            return f"{receipt} approved by {self.approved_by} discount {self.discount}"

        @workflow.signal
        def approve(self, who: str) -> None:
            self.approved_by = who

        @workflow.query
        def status(self) -> str:
            return f"approved by {self.approved_by}" if self.approved_by else "waiting"

        @workflow.update
        def set_discount(self, percent: int) -> int:
            self.discount = percent
            return percent

        @set_discount.validator
        def check_discount(self, percent: int) -> None:
            if percent > 50:
                raise ValueError("at most 50%")


    @workflow.defn
    class Chatty:
        # Many events: a history that pages.
        def __init__(self) -> None:
            self.seen = 0

        @workflow.run
        async def run(self, signals: int) -> int:
            await workflow.wait_condition(lambda: self.seen >= signals)
            return self.seen

        @workflow.signal
        def ping(self, n: int) -> None:
            self.seen += 1


    @workflow.defn
    class Approval:
        @workflow.run
        async def run(self, order_id: str) -> str:
            return await workflow.execute_activity(
                ask_a_human, order_id, start_to_close_timeout=timedelta(minutes=5)
            )
    """
)


def write_app(directory: Path) -> None:
    (directory / "server_app.py").write_text(APP)


def env_for(db: str, cwd: Path) -> dict[str, str]:
    return {**os.environ, "PERDURE_DB": db, "PYTHONPATH": str(cwd)}


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextmanager
def worker(db: str, cwd: Path, task_queue: str = "shop") -> Iterator[subprocess.Popen[str]]:
    """A `perdure worker` process for the app's workflows (it creates a SQLite file)."""
    process = subprocess.Popen(
        [PERDURE, "worker", "-q", task_queue, "--log-level", "WARNING", "server_app"],
        cwd=cwd,
        env=env_for(db, cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "perdure worker" in first, first + process.stdout.read()
        yield process
    finally:
        stop(process)


@dataclass
class Running:
    """A server process: where it listens, and what it printed at start."""

    process: subprocess.Popen[str]
    url: str
    banner: list[str]
    cwd: Path

    @property
    def login_token(self) -> str | None:
        for line in self.banner:
            found = re.search(r"/\?token=(\S+)", line)
            if found:
                return found.group(1)
        return None

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def start_server(db: str, cwd: Path, *args: str, log_level: str = "WARNING") -> Running:
    """Start `perdure server` on a free port; return once it listens (or fail with its
    output)."""
    process = subprocess.Popen(
        [PERDURE, "server", "--port", "0", "--log-level", log_level, *args],
        cwd=cwd,
        env=env_for(db, cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    banner: list[str] = []
    while True:
        line = process.stdout.readline()
        if not line:
            process.wait(30)
            raise AssertionError("perdure server did not start:\n" + "".join(banner))
        banner.append(line)
        if "API docs at" in line:
            break
    found = [re.search(r"listening on (http://\S+)", line) for line in banner]
    url = next(m.group(1) for m in found if m)
    return Running(process, url, banner, cwd)


@contextmanager
def server(db: str, cwd: Path, *args: str) -> Iterator[Running]:
    running = start_server(db, cwd, *args)
    try:
        yield running
    finally:
        stop(running.process)


def wait_for(what: str, read: object, timeout: float = 30) -> None:
    """Poll ``read()`` (real time: another process moves things along) until it is true."""
    deadline = time.monotonic() + timeout
    while not read():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Api:
    """The HTTP API of a running server, each response checked against its OpenAPI
    document (status, content type and body schema)."""

    def __init__(self, running: Running, token: str | None) -> None:
        import schemathesis

        self.http = running.client(token)
        document = self.http.get("/api/v1/openapi.json")
        assert document.status_code == 200, document.text
        self.schema = schemathesis.openapi.from_dict(document.json())

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def call(self, method: str, template: str, **kwargs: Any) -> httpx.Response:
        """``template`` is the document's path (``/api/v1/workflows/{workflow_id}``); its
        parameters come from ``kwargs``, percent-encoded; the rest go to httpx."""
        names = re.findall(r"{(\w+)}", template)
        path = template
        for name in names:
            path = path.replace(f"{{{name}}}", quote(str(kwargs.pop(name)), safe=""))
        response = self.http.request(method, path, **kwargs)
        self.schema[template][method].validate_response(response)
        return response

    def get(self, template: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", template, **kwargs)

    def post(self, template: str, **kwargs: Any) -> httpx.Response:
        return self.call("POST", template, **kwargs)


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
