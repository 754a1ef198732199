"""The web UI as a user drives it, in Chromium: log in with the token URL, find a workflow
by a query, open it, see its events and timeline, signal, cancel and reset it, see a failing
workflow task's stack, step through its history on the server's copy of the code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from ui_support import Served, expect

# One group: under `--dist loadgroup` the UI tests share one server, worker and browser.
pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("ui")]


def open_workflow(page: Any, served: Served, workflow_id: str) -> None:
    page.goto(f"{served.url}/workflow?id={quote(workflow_id, safe='')}")
    expect(page.locator("#workflow-id")).to_have_text(workflow_id)


def test_log_in_find_a_workflow_by_a_query_and_open_it(page: Any, served: Served) -> None:
    served.start("Checkout", "ui-find-1", "ui-find-1")
    served.start("Checkout", "ui-find-2", "ui-find-2")
    # The login URL set the session cookie and dropped the token from the address.
    assert "token=" not in page.url
    page.fill("#query", "WorkflowId = 'ui-find-2'")
    page.press("#query", "Enter")
    expect(page.locator("a.wf-link")).to_have_text(["ui-find-2"])
    assert "query=WorkflowId" in page.url  # the view is in the URL
    # The counts by status (capped, so that a big database stays quick) count the match.
    expect(page.locator('[data-status="ALL"] .count')).to_have_text("1")
    expect(page.locator('[data-status="RUNNING"] .count')).to_have_text("1")
    page.click("a.wf-link")
    expect(page.locator("#workflow-id")).to_have_text("ui-find-2")
    # The activity ran and the workflow waits: its events and its timeline show it.
    expect(page.locator('[data-event-type="ActivityTaskCompleted"]')).to_have_count(1)
    expect(page.locator("svg.timeline g.span.activity")).to_have_count(1)
    expect(page.locator('[data-event-type="WorkflowExecutionStarted"] .esum')).to_have_text(
        "Checkout on ui"
    )


def test_a_bad_query_shows_where_it_is_wrong(page: Any, served: Served) -> None:
    page.fill("#query", "WorkflowId = ")
    page.press("#query", "Enter")
    expect(page.locator(".alert.error")).to_contain_text("Bad visibility query")
    expect(page.locator(".query-error .caret")).to_contain_text("^")


def test_a_signal_moves_the_workflow_on(page: Any, served: Served) -> None:
    served.start("Checkout", "ui-signal", "ui-signal")
    open_workflow(page, served, "ui-signal")
    expect(page.locator('[data-event-type="ActivityTaskCompleted"]')).to_have_count(1)
    page.click("#act-signal")
    # The dialog offers the signals the workflow declares.
    expect(page.locator("#names-signals option")).to_have_attribute("value", "approve")
    page.fill("dialog input[name=name]", "approve")
    page.fill("dialog textarea[name=args]", '["ada"]')
    page.click("dialog button[type=submit]")
    # The page follows the run: it completes with the signal's value.
    expect(page.locator(".page-head .badge")).to_have_text("Completed")
    expect(page.locator("#result")).to_contain_text("approved by ada")
    expect(page.locator("svg.timeline .point.signal")).to_have_count(1)
    # The history downloads as the document `perdure history export` writes.
    with page.expect_download() as download:
        page.click("#act-download")
    document = json.loads(Path(download.value.path()).read_text())
    assert document["format"] == "perdure.workflow-history"
    assert document["workflow_id"] == "ui-signal"
    assert document["events"][-1]["event_type"] == "WorkflowExecutionCompleted"


def test_cancel_a_workflow(page: Any, served: Served) -> None:
    served.start("Checkout", "ui-cancel", "ui-cancel")
    open_workflow(page, served, "ui-cancel")
    page.click("#act-cancel")
    page.fill("dialog input[name=reason]", "changed my mind")
    page.click("dialog button[type=submit]")
    expect(page.locator(".page-head .badge")).to_have_text("Canceled")
    expect(page.locator('[data-event-type="WorkflowExecutionCancelRequested"]')).to_contain_text(
        "changed my mind"
    )


def test_an_update_then_terminate(page: Any, served: Served) -> None:
    served.start("Checkout", "ui-update", "ui-update")
    open_workflow(page, served, "ui-update")
    page.click("#act-update")
    page.fill("dialog input[name=name]", "add_note")
    page.fill("dialog textarea[name=args]", '"gift wrap"')  # one value: the only argument
    page.click("dialog button[type=submit]")
    expect(page.locator(".toast")).to_have_text("Update answered: 1")
    expect(page.locator('[data-event-type="WorkflowExecutionUpdateAccepted"]')).to_have_count(1)
    page.click("#act-terminate")
    page.fill("dialog input[name=reason]", "duplicate order")
    page.click("dialog button[type=submit]")
    expect(page.locator(".page-head .badge")).to_have_text("Terminated")
    expect(page.locator("#act-signal")).to_have_count(0)  # nothing to act on any more


def test_reset_a_workflow_to_its_first_task(page: Any, served: Served) -> None:
    first = served.start("Checkout", "ui-reset", "ui-reset")
    open_workflow(page, served, "ui-reset")
    expect(page.locator('[data-event-type="ActivityTaskCompleted"]')).to_have_count(1)
    page.click("#act-reset")
    page.select_option("dialog select[name=event_id]", "2")
    page.fill("dialog input[name=reason]", "try again")
    page.click("dialog button[type=submit]")
    # The page moves to the new run, which names the run it was reset from.
    expect(page).not_to_have_url(re.compile(re.escape(first)))
    expect(page.locator(".summary")).to_contain_text(f"Reset at event 2 from {first}")


def test_a_failing_workflow_task_shows_its_stack(page: Any, served: Served) -> None:
    served.start("Broken", "ui-broken", "ui-broken")
    open_workflow(page, served, "ui-broken")
    failure = page.locator(".task-failure")
    expect(failure).to_contain_text("RuntimeError: no rule for ui-broken", timeout=30_000)
    expect(failure.locator("pre.stack")).to_contain_text('raise RuntimeError(f"no rule for')


def test_the_call_stack_of_a_waiting_workflow(page: Any, served: Served) -> None:
    served.start("Checkout", "ui-stack", "ui-stack")
    open_workflow(page, served, "ui-stack")
    page.click("#tab-stack")
    expect(page.locator("pre.stack")).to_contain_text("wait_condition")


def test_step_through_the_history_on_the_servers_code(page: Any, served: Served) -> None:
    served.start("Checkout", "ui-travel", "ui-travel")
    # The signal waits until the run waits for it: sent sooner, it would be in the first
    # workflow task, and no event would show the run waiting.
    events = served.wait_for_event("ui-travel", "ActivityTaskCompleted")
    first_task = next(e["event_id"] for e in events if e["event_type"] == "WorkflowTaskCompleted")
    with served.http(served.write) as http:
        http.post("/api/v1/workflows/ui-travel/signals/approve", json={"args": ["bob"]})
        done = http.get("/api/v1/workflows/ui-travel/result?wait=30").json()
        assert done["status"] == "COMPLETED", done
    open_workflow(page, served, "ui-travel")
    page.click("#tab-travel")
    page.fill("#tt-event", str(first_task))
    page.press("#tt-event", "Enter")
    expect(page.locator(".time-travel table")).to_contain_text("waiting")
    page.click("#tt-next")
    page.click("#tt-next")
    page.fill("#tt-event", "999")
    page.press("#tt-event", "Enter")
    expect(page.locator(".time-travel table")).to_contain_text("approved by bob")
    expect(page.locator(".tt-out")).not_to_have_class(re.compile("loading"))
    page.click("#replay-check")
    expect(page.locator(".tt-check")).to_contain_text("the current code replays this history")


def test_a_retrying_activity_shows_its_attempt_and_last_failure(page: Any, served: Served) -> None:
    served.start("Flaky", "ui-flaky", "ui-flaky")
    open_workflow(page, served, "ui-flaky")
    page.click("#tab-pending")
    row = page.locator("table.pending tbody tr")
    expect(row).to_contain_text("call_the_bank")
    expect(row).to_contain_text("RuntimeError: the bank is closed for ui-flaky")
    attempt = int(row.locator('td[data-label="Attempt"]').inner_text())
    assert attempt >= 2
    page.click("#tab-history")
    expect(page.locator("svg.timeline g.activity .bar.retried")).to_have_count(1)
    with served.http(served.write) as http:  # stop it retrying
        http.post("/api/v1/workflows/ui-flaky/terminate", json={"reason": "done"})
