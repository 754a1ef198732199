"""Who sees what: a read-only token sees no action buttons and its POSTs get 403; without a
session every page and route is 401; an HTML workflow id, input or failure is text."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from ui_support import INJECTION, Served, expect

# One group: under `--dist loadgroup` the UI tests share one server, worker and browser.
pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("ui")]


def test_a_read_token_sees_no_action_and_may_not_post(read_page: Any, served: Served) -> None:
    served.start("Checkout", "ui-read", "ui-read")
    read_page.goto(f"{served.url}/workflow?id=ui-read")
    expect(read_page.locator("#workflow-id")).to_have_text("ui-read")
    expect(read_page.locator("#role")).to_have_text("read only")
    expect(read_page.locator("#act-query")).to_be_visible()  # a query changes nothing
    for action in ("signal", "update", "cancel", "terminate", "reset"):
        expect(read_page.locator(f"#act-{action}")).to_have_count(0)
    read_page.click("#act-query")
    read_page.fill("dialog input[name=name]", "status")
    read_page.click("dialog button[type=submit]")
    expect(read_page.locator("dialog .query-answer pre")).to_have_text("waiting")
    read_page.click("dialog button[value=cancel]")
    # The session may not change anything, even with a good CSRF header.
    status = read_page.evaluate(
        """async () => {
            const csrf = document.cookie.match(/perdure_csrf=([^;]+)/)[1];
            const r = await fetch("api/v1/workflows/ui-read/signals/approve", {
                method: "POST", body: JSON.stringify({args: ["eve"]}),
                headers: {"Content-Type": "application/json", "X-Perdure-CSRF": csrf}});
            return r.status;
        }"""
    )
    assert status == 403
    read_page.goto(f"{served.url}/schedules")
    expect(read_page.locator("h1")).to_have_text("Schedules")
    expect(read_page.locator("#create-schedule")).to_have_count(0)


def test_without_a_session_everything_is_401(served: Served) -> None:
    with served.http() as http:
        for path in ("/", "/workflow?id=x", "/ui/js/app.js", "/api/v1/workflows"):
            assert http.get(path).status_code == 401, path
        assert http.post("/api/v1/schedules/x/trigger", json={}).status_code == 401
        # A browser is told how to log in.
        page = http.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 401
        assert "perdure server token create" in page.text
        assert page.headers["www-authenticate"].startswith("Bearer")


def test_an_html_id_input_and_failure_render_as_text(page: Any, served: Served) -> None:
    served.start("Broken", INJECTION, INJECTION)
    page.goto(f"{served.url}/?query=" + quote("WorkflowType = 'Broken'"))
    expect(page.locator("a.wf-link", has_text="<script>")).to_have_text(INJECTION)
    page.goto(f"{served.url}/workflow?id={quote(INJECTION, safe='')}")
    expect(page.locator("#workflow-id")).to_have_text(INJECTION)
    # The input and the failure message carry it too: text again.
    expect(page.locator(".io pre").first).to_contain_text(INJECTION.partition(" ")[0])
    expect(page.locator(".task-failure")).to_contain_text(f"no rule for {INJECTION}")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0


def test_the_schedules_page(page: Any, served: Served) -> None:
    with served.http(served.write) as http:
        created = http.post(
            "/api/v1/schedules",
            json={
                "schedule_id": "ui-nightly",
                "action": {
                    "workflow_type": "Checkout",
                    "workflow_id": "nightly",
                    "task_queue": "ui",
                    "args": ["n"],
                },
                "spec": {"cron_expressions": ["0 2 * * *"]},
            },
        )
        assert created.status_code == 201, created.text
    page.goto(f"{served.url}/schedules")
    page.click("text=ui-nightly")
    expect(page.locator("h1")).to_have_text("ui-nightly")
    page.click("#sched-pause")
    expect(page.locator(".page-head .badge")).to_have_text("Paused")
    page.click("#sched-unpause")
    expect(page.locator(".page-head .badge")).to_have_text("Active")
    # Edited: what it starts and its note; "when" kept (no new cron or interval given).
    page.click("#sched-edit")
    expect(page.locator("dialog [name=workflow_id]")).to_have_value("nightly")
    expect(page.locator("dialog [name=args]")).to_have_value('["n"]')
    page.fill("dialog [name=args]", '["n", 2]')
    page.fill("dialog [name=note]", "twice as much")
    page.click("dialog button[type=submit]")
    expect(page.locator(".summary")).to_contain_text("twice as much")
    expect(page.locator(".io pre").first).to_contain_text("2")
    with served.http(served.write) as http:
        edited = http.get("/api/v1/schedules/ui-nightly").json()
    assert edited["action"]["args"] == ["n", 2]
    assert [c["text"] for c in edited["spec"]["calendars"]] == [
        c["text"] for c in created.json()["spec"]["calendars"]
    ]
    # And "when", changed to an interval.
    page.click("#sched-edit")
    page.fill("dialog [name=every]", "600")
    page.click("dialog button[type=submit]")
    expect(page.locator(".summary")).to_contain_text("every 10m")
    # A schedule made with the form.
    page.goto(f"{served.url}/schedules")
    page.click("#create-schedule")
    for name, value in (
        ("schedule_id", "ui-hourly"),
        ("workflow_type", "Checkout"),
        ("workflow_id", "hourly"),
        ("task_queue", "ui"),
        ("args", '["h"]'),
        ("every", "3600"),
    ):
        page.fill(f"dialog [name={name}]", value)
    page.click("dialog button[type=submit]")
    expect(page.locator("h1")).to_have_text("ui-hourly")
    expect(page.locator(".summary")).to_contain_text("every 1h")
