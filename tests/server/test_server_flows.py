"""The main flows through a real `perdure server` process, with a real `perdure worker`
process, on SQLite and PostgreSQL; every response is checked against the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from server_support import Api, Running, wait_for

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]

WF = "/api/v1/workflows/{workflow_id}"


@pytest.fixture
def api(served: Running) -> Iterator[Api]:
    token = served.login_token
    assert token is not None, "".join(served.banner)
    with Api(served, token) as api:
        yield api


def start(api: Api, workflow_type: str, workflow_id: str, *args: object) -> dict[str, object]:
    response = api.post(
        "/api/v1/workflows",
        json={
            "workflow_type": workflow_type,
            "workflow_id": workflow_id,
            "task_queue": "shop",
            "args": list(args),
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_start_query_update_signal_and_result(api: Api) -> None:
    started = start(api, "Checkout", "orders/1", "orders/1", 12.5)
    assert started["workflow_id"] == "orders/1"
    assert started["status"] == "RUNNING"
    assert started["workflow_type"] == "Checkout"

    again = api.post(
        "/api/v1/workflows",
        json={"workflow_type": "Checkout", "workflow_id": "orders/1", "task_queue": "shop"},
    )
    assert again.status_code == 409
    assert again.json()["error"] == "WorkflowAlreadyStartedError"

    query = api.post(f"{WF}/queries/{{name}}", workflow_id="orders/1", name="status", json={})
    assert query.json() == {"result": "waiting"}
    update = api.post(
        f"{WF}/updates/{{name}}",
        workflow_id="orders/1",
        name="set_discount",
        json={"args": [10], "update_id": "u-1"},
    )
    assert update.json() == {"result": 10}
    refused = api.post(
        f"{WF}/updates/{{name}}", workflow_id="orders/1", name="set_discount", json={"args": [99]}
    )
    assert refused.status_code == 422
    assert "at most 50%" in refused.json()["detail"]

    running = api.get(f"{WF}/result", workflow_id="orders/1")
    assert running.json() == {"status": "RUNNING", "run_id": started["run_id"]}
    approve = {"args": ["ada"], "request_id": "approve-1"}
    signal = api.post(
        f"{WF}/signals/{{name}}", workflow_id="orders/1", name="approve", json=approve
    )
    assert signal.json() == {"workflow_id": "orders/1", "run_id": None}
    done = api.get(f"{WF}/result", workflow_id="orders/1", params={"wait": 60})
    assert done.json() == {
        "status": "COMPLETED",
        "run_id": started["run_id"],
        "result": "receipt-orders/1 approved by ada discount 10",
    }
    # The client retries the signal with its key: accepted (it was taken), recorded once.
    retry = api.post(f"{WF}/signals/{{name}}", workflow_id="orders/1", name="approve", json=approve)
    assert retry.status_code == 200, retry.text
    late = api.post(
        f"{WF}/signals/{{name}}", workflow_id="orders/1", name="approve", json={"args": ["eve"]}
    )
    assert late.status_code == 404, late.text

    described = api.get(WF, workflow_id="orders/1").json()
    assert described["status"] == "COMPLETED"
    assert described["pending_activities"] == []
    history = api.get(f"{WF}/history", workflow_id="orders/1", params={"decode": "true"}).json()
    first = history["events"][0]
    assert first["event_type"] == "WorkflowExecutionStarted"
    assert first["attributes"]["input"] == ["orders/1", 12.5]
    signalled = [e for e in history["events"] if e["event_type"] == "WorkflowExecutionSignaled"]
    assert [e["attributes"]["input"] for e in signalled] == [["ada"]]
    assert signalled[0]["attributes"]["request_id"] == "approve-1"
    assert history["next_page_token"] is None


def test_a_failed_workflow_and_a_long_poll_that_times_out(api: Api) -> None:
    start(api, "Checkout", "bad-1", "bad-1", 5)
    # The long poll ends after its wait with the workflow still running.
    waited = api.get(f"{WF}/result", workflow_id="bad-1", params={"wait": 0.3})
    assert waited.json()["status"] == "RUNNING"
    api.post(f"{WF}/signals/{{name}}", workflow_id="bad-1", name="approve", json={"args": ["x"]})
    failed = api.get(f"{WF}/result", workflow_id="bad-1", params={"wait": 60}).json()
    assert failed["status"] == "FAILED"
    assert failed["failure"]["message"] == "card declined"
    assert failed["failure"]["type"] == "Declined"


# The server is shared by this module's tests: this one lists the workflows it started.
MINE = "WorkflowType = 'Checkout' AND WorkflowId STARTS_WITH 'list-'"


def test_list_pages_with_tokens_and_count(api: Api) -> None:
    ids = {f"list-{n}" for n in range(7)}
    for workflow_id in sorted(ids):
        start(api, "Checkout", workflow_id, workflow_id, 1)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, object] = {"page_size": 3, "query": MINE}
        if token:
            params["next_page_token"] = token
        page = api.get("/api/v1/workflows", params=params).json()
        pages += 1
        assert len(page["workflows"]) <= 3
        seen += [wf["workflow_id"] for wf in page["workflows"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(ids)  # each exactly once
    count = api.get("/api/v1/workflows/count", params={"query": MINE})
    assert count.json() == {"count": 7}
    bad = api.get("/api/v1/workflows", params={"query": "WorkflowType = "})
    assert bad.status_code == 400
    assert bad.json()["position"] == len("WorkflowType = ") + 1


def test_a_long_history_pages(api: Api) -> None:
    signals = 40
    start(api, "Chatty", "chatty", signals)
    for n in range(signals):
        api.post(f"{WF}/signals/{{name}}", workflow_id="chatty", name="ping", json={"args": [n]})
    assert api.get(f"{WF}/result", workflow_id="chatty", params={"wait": 60}).json()["result"] == 40
    whole = api.get(f"{WF}/history", workflow_id="chatty").json()
    assert whole["format"] == "perdure.workflow-history"
    length = len(whole["events"])
    assert length > signals
    ids: list[int] = []
    token = None
    while True:
        params: dict[str, object] = {"page_size": 9}
        if token:
            params["next_page_token"] = token
        page = api.get(f"{WF}/history", workflow_id="chatty", params=params).json()
        assert len(page["events"]) <= 9
        ids += [e["event_id"] for e in page["events"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert ids == list(range(1, length + 1))
    # Following a closed run's history: the last page says no more will come.
    followed = api.get(
        f"{WF}/history", workflow_id="chatty", params={"page_size": length, "wait": 5}
    ).json()
    assert len(followed["events"]) == length
    assert followed["next_page_token"] is None


def test_cancel_terminate_reset_and_delete(api: Api) -> None:
    first = start(api, "Checkout", "reset-me", "reset-me", 3)
    # The query is answered once the first workflow task has run: there is a point to reset to.
    api.post(f"{WF}/queries/{{name}}", workflow_id="reset-me", name="status", json={})
    reset = api.post(
        f"{WF}/reset",
        workflow_id="reset-me",
        json={"reason": "charge again", "reset_type": "FIRST_WORKFLOW_TASK"},
    ).json()
    assert reset["run_id"] != first["run_id"]
    described = api.get(WF, workflow_id="reset-me").json()
    assert described["run_id"] == reset["run_id"]
    assert described["reset_from"]["base_run_id"] == first["run_id"]
    old = api.get(f"{WF}/result", workflow_id="reset-me", params={"run_id": first["run_id"]})
    assert old.json() == {"status": "RUNNING", "run_id": reset["run_id"]}  # followed

    start(api, "Checkout", "cancel-me", "cancel-me", 3)
    api.post(f"{WF}/cancel", workflow_id="cancel-me", json={"reason": "changed my mind"})
    cancelled = api.get(f"{WF}/result", workflow_id="cancel-me", params={"wait": 60}).json()
    assert cancelled["status"] == "CANCELED"

    start(api, "Checkout", "end-me", "end-me", 3)
    api.post(f"{WF}/terminate", workflow_id="end-me", json={"reason": "stuck"})
    ended = api.get(f"{WF}/result", workflow_id="end-me").json()
    assert ended["status"] == "TERMINATED"
    assert ended["failure"]["message"] == "stuck"

    assert api.call("DELETE", WF, workflow_id="end-me").status_code == 200
    gone = api.get(WF, workflow_id="end-me")
    assert gone.status_code == 404
    assert gone.json()["error"] == "WorkflowNotFoundError"


def test_async_activity_completed_and_failed_by_task_token(api: Api, served: Running) -> None:
    start(api, "Approval", "approve-1", "approve-1")
    start(api, "Approval", "approve-2", "approve-2")
    tokens = [served.cwd / "token-approve-1.txt", served.cwd / "token-approve-2.txt"]
    wait_for("the activities to hand out their tokens", lambda: all(t.exists() for t in tokens))
    first, second = (t.read_text() for t in tokens)

    beat = api.post("/api/v1/activities/heartbeat", json={"task_token": first, "details": [1]})
    assert beat.json() == {"cancel_requested": False}
    done = api.post("/api/v1/activities/complete", json={"task_token": first, "result": "yes"})
    assert done.json() == {"ok": True}
    result = api.get(f"{WF}/result", workflow_id="approve-1", params={"wait": 60}).json()
    assert result == {"status": "COMPLETED", "run_id": result["run_id"], "result": "yes"}
    again = api.post("/api/v1/activities/complete", json={"task_token": first, "result": "no"})
    assert again.status_code == 404
    assert again.json()["error"] == "AsyncActivityNotFoundError"

    api.post(
        "/api/v1/activities/fail",
        json={
            "task_token": second,
            "failure": {"message": "rejected by a human", "type": "No", "non_retryable": True},
        },
    )
    failed = api.get(f"{WF}/result", workflow_id="approve-2", params={"wait": 60}).json()
    assert failed["status"] == "FAILED"
    chain = []
    cause = failed["failure"]
    while cause:
        chain.append(cause["message"])
        cause = cause["cause"]
    assert "rejected by a human" in chain


def test_start_with_a_priority(api: Api) -> None:
    body = {"workflow_type": "Checkout", "task_queue": "shop", "args": ["p/1", 1.0]}
    priority = {"priority_key": 1, "fairness_key": "acme", "fairness_weight": 2.0}
    started = api.post(
        "/api/v1/workflows", json={**body, "workflow_id": "p/1", "priority": priority}
    )
    assert started.status_code == 201, started.text
    history = api.get(f"{WF}/history", workflow_id="p/1").json()
    assert history["events"][0]["attributes"]["priority"] == priority
    for wrong in ({"priority_key": 0}, {"fairness_key": ""}, {"fairness_weight": 5000}, {"x": 1}):
        refused = api.post("/api/v1/workflows", json={**body, "priority": wrong})
        assert refused.status_code == 400 and "body.priority" in refused.text, refused.text
