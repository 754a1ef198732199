"""The routes the UI's time travel uses, on a server given the workflow code: a run's state
at an event (its queries' answers, where its code waited) and the replay check."""

from __future__ import annotations

import pytest
from ui_support import Served

# One group: under `--dist loadgroup` the UI tests share one server, worker and browser.
pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("ui")]


def test_the_state_of_a_run_at_each_event(served: Served) -> None:
    served.start("Checkout", "api-travel", "api-travel")
    events = served.wait_for_event("api-travel", "ActivityTaskCompleted")
    with served.http(served.read) as http:  # reading needs no write token
        completed = [e["event_id"] for e in events if e["event_type"] == "WorkflowTaskCompleted"]
        before = http.get("/api/v1/workflows/api-travel/replay/state?event_id=1").json()
        assert before["at_event_id"] == 0
        assert before["error"] == "No workflow task had completed by event 1"
        last = events[-1]["event_id"]
        now = http.get(f"/api/v1/workflows/api-travel/replay/state?event_id={last}").json()
        assert now["at_event_id"] == last >= completed[-1]
        assert now["queries"] == [{"name": "status", "result": "waiting", "error": None}]
        assert "wait_condition" in now["stack_trace"]
        check = http.get("/api/v1/workflows/api-travel/replay").json()
        assert (check["ok"], check["error"], check["workflow_type"]) == (True, None, "Checkout")
        missing = http.get("/api/v1/workflows/no-such-run/replay/state?event_id=1")
        assert missing.status_code == 404
