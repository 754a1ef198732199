"""The web UI in a real browser: Playwright's Python package driving Debian's Chromium (no
browser download), against a real `perdure server` process and a real `perdure worker`
process on a SQLite file.

Without Playwright or Chromium the browser tests skip, saying why; under
``PERDURE_REQUIRE_BROWSER=1`` (CI) they fail instead."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

try:  # the browser tests skip (or fail in CI) without it: see browser_or_skip
    from playwright.sync_api import expect
except ImportError:
    expect = None

PERDURE = str(Path(sys.executable).parent / "perdure")
CHROMIUM = os.environ.get("PERDURE_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("PERDURE_REQUIRE_BROWSER") == "1"
# A workflow id that is HTML: it must show as text, everywhere.
INJECTION = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'

APP = textwrap.dedent(
    """
    from datetime import timedelta

    from perdure import activity, workflow
    from perdure.common import RetryPolicy


    @activity.defn
    async def charge(order_id: str) -> str:
        return f"receipt-{order_id}"


    @activity.defn
    async def call_the_bank(order_id: str) -> str:
        activity.heartbeat("dialing")
        raise RuntimeError(f"the bank is closed for {order_id}")


    @workflow.defn
    class Flaky:
        @workflow.run
        async def run(self, order_id: str) -> str:
            return await workflow.execute_activity(
                call_the_bank, order_id, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100),
                                         backoff_coefficient=1.0),
            )


    @workflow.defn
    class Checkout:
        def __init__(self) -> None:
            self.approved_by = ""
            self.notes: list[str] = []

        @workflow.run
        async def run(self, order_id: str) -> str:
            receipt = await workflow.execute_activity(
                charge, order_id, start_to_close_timeout=timedelta(seconds=30)
            )
            await workflow.wait_condition(lambda: bool(self.approved_by))
            return f"{receipt} approved by {self.approved_by}"

        @workflow.signal
        def approve(self, who: str) -> None:
            self.approved_by = who

        @workflow.query
        def status(self) -> str:
            return f"approved by {self.approved_by}" if self.approved_by else "waiting"

        @workflow.update
        def add_note(self, text: str) -> int:
            self.notes.append(text)
            return len(self.notes)


    @workflow.defn
    class Broken:
        @workflow.run
        async def run(self, order_id: str) -> str:
            raise RuntimeError(f"no rule for {order_id}")
    """
)


def browser_or_skip() -> Any:
    """Playwright's sync API, or a skip (a failure in CI) saying what is missing."""

    def missing(reason: str) -> None:
        if REQUIRE_BROWSER:
            pytest.fail(f"{reason} (PERDURE_REQUIRE_BROWSER=1: the browser tests must run)")
        pytest.skip(reason)

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("The browser tests need Playwright: pip install -e '.[dev]'")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing(f"The browser tests need Chromium at {CHROMIUM}: apt-get install -y chromium")
    return sync_playwright


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


def spawn(args: list[str], cwd: Path, db: str, until: str) -> tuple[subprocess.Popen[str], str]:
    """Start a perdure process; return once it printed ``until`` (or fail with its output)."""
    process = subprocess.Popen(
        [PERDURE, *args],
        cwd=cwd,
        env=env_for(db, cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    while until not in (lines[-1] if lines else ""):
        line = process.stdout.readline()
        if not line:
            process.wait(30)
            raise AssertionError(f"perdure {args[0]} did not start:\n" + "".join(lines))
        lines.append(line)
    return process, "".join(lines)


@dataclass
class Served:
    """A server and a worker, and the tokens to reach the server with."""

    url: str
    write: str
    read: str

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def start(self, workflow_type: str, workflow_id: str, *args: object) -> str:
        with self.http(self.write) as http:
            answer = http.post(
                "/api/v1/workflows",
                json={
                    "workflow_type": workflow_type,
                    "workflow_id": workflow_id,
                    "task_queue": "ui",
                    "args": list(args),
                },
            )
            assert answer.status_code == 201, answer.text
            run_id: str = answer.json()["run_id"]
            return run_id

    def wait_for_event(self, workflow_id: str, event_type: str) -> list[dict[str, Any]]:
        """The run's events up to the first of `event_type`, read with the history's long
        poll (no sleeps): for a test that must act only once the run has reached it."""
        events: list[dict[str, Any]] = []
        token: str | None = None
        with self.http(self.read) as http:
            for _ in range(100):  # each wait is up to 5 s
                params: dict[str, Any] = {"wait": 5}
                if token:
                    params["next_page_token"] = token
                page = http.get(f"/api/v1/workflows/{workflow_id}/history", params=params)
                assert page.status_code == 200, page.text
                body = page.json()
                events.extend(body["events"])
                if any(e["event_type"] == event_type for e in events):
                    return events
                token = body["next_page_token"]
                assert token, f"{workflow_id} closed without {event_type}: {events}"
        raise AssertionError(f"{workflow_id} had no {event_type} after 500 s: {events}")
