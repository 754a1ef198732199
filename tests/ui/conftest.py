from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_support import APP, Served, browser_or_skip, spawn, stop

from perdure.server._tokens import Role, append_token


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`perdure server MODULE` (so it can replay histories) and `perdure worker` on a SQLite
    file, started once for the UI's tests (each uses workflow ids of its own); the
    browser is per module, and closed with it (Playwright's sync API runs an event loop)."""
    cwd: Path = tmp_path_factory.mktemp("ui")
    (cwd / "ui_app.py").write_text(APP)
    db = f"sqlite:///{cwd / 'ui.db'}"
    tokens = str(cwd / "tokens")
    write, _ = append_token(Path(tokens), Role.WRITE)
    read, _ = append_token(Path(tokens), Role.READ)
    # The worker first: it creates the database file, which the server refuses to go
    # without (on a loaded machine a server started beside it could come up first).
    worker, _ = spawn(
        ["worker", "-q", "ui", "--log-level", "WARNING", "ui_app"], cwd, db, "perdure worker"
    )
    try:
        server, banner = spawn(
            ["server", "--port", "0", "--log-level", "WARNING", "--token-file", tokens, "ui_app"],
            cwd,
            db,
            "API docs at",
        )
    except BaseException:
        stop(worker)
        raise
    try:
        url = re.search(r"listening on (http://\S+)", banner)
        assert url is not None, banner
        yield Served(url.group(1), write, read)
    finally:
        stop(server)
        stop(worker)


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    sync_playwright = browser_or_skip()
    from playwright.sync_api import expect

    # The suite runs in parallel on few cores: give a page time before calling it wrong.
    expect.set_options(timeout=20_000)
    from ui_support import CHROMIUM

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _page(browser: Any, served: Served, token: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{served.url}/?token={token}")
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Any]:
    """A browser tab logged in with the write token."""
    yield from _page(browser, served, served.write)


@pytest.fixture
def read_page(browser: Any, served: Served) -> Iterator[Any]:
    """A browser tab logged in with the read token."""
    yield from _page(browser, served, served.read)
