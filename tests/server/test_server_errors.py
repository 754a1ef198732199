"""Errors as RFC 9457 problem documents with the Python API's messages, in process, on each
store; ids in paths; values that must come back as text."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from server_support import InProcess, in_process
from starlette.applications import Starlette
from starlette.routing import Mount

from perdure.client import (
    Client,
    VisibilityQueryError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
)
from perdure.server import create_app
from perdure.server._tokens import Role, append_token

PROBLEM = "application/problem+json"


def start_body(workflow_id: str, *args: object) -> dict[str, object]:
    return {
        "workflow_type": "Checkout",
        "workflow_id": workflow_id,
        "task_queue": "shop",
        "args": list(args),
    }


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    return body


async def test_a_missing_workflow_is_404_with_the_python_message(on_store: InProcess) -> None:
    with pytest.raises(WorkflowNotFoundError) as raised:
        await on_store.client.get_workflow_handle("nope").describe()
    headers = on_store.auth(on_store.write)
    for method, path in (
        ("GET", "/api/v1/workflows/nope"),
        ("GET", "/api/v1/workflows/nope/history"),
        ("GET", "/api/v1/workflows/nope/result"),
        ("POST", "/api/v1/workflows/nope/signals/approve"),
        ("POST", "/api/v1/workflows/nope/terminate"),
        ("DELETE", "/api/v1/workflows/nope"),
    ):
        response = await on_store.http.request(method, path, headers=headers, json=None)
        body = assert_problem(response, 404)
        assert body["detail"] == str(raised.value), (method, path)
        assert body["error"] == "WorkflowNotFoundError"


async def test_a_duplicate_start_is_409(on_store: InProcess) -> None:
    headers = on_store.auth(on_store.write)
    first = await on_store.http.post("/api/v1/workflows", json=start_body("dup"), headers=headers)
    assert first.status_code == 201
    with pytest.raises(WorkflowAlreadyStartedError) as raised:
        await on_store.client.start_workflow("Checkout", id="dup", task_queue="shop")
    again = await on_store.http.post("/api/v1/workflows", json=start_body("dup"), headers=headers)
    body = assert_problem(again, 409)
    assert body["detail"] == str(raised.value)
    assert body["run_id"] == first.json()["run_id"]


@pytest.mark.parametrize(
    "query",
    ["WorkflowType = ", "WorkflowType = 'A' AND (", "NoSuchField = 'x'", "StartTime > 'soon'"],
)
async def test_a_bad_visibility_query_is_400_with_its_position(
    on_store: InProcess, query: str
) -> None:
    with pytest.raises(VisibilityQueryError) as raised:
        await on_store.client.count_workflows(query)
    headers = on_store.auth(on_store.read)
    for path in ("/api/v1/workflows", "/api/v1/workflows/count"):
        response = await on_store.http.get(path, params={"query": query}, headers=headers)
        body = assert_problem(response, 400)
        assert body["position"] == raised.value.column
        assert body["query"] == query
        assert body["detail"] == str(raised.value)


async def test_oversized_payloads_and_bodies_are_413(db_url: str, tmp_path: Path) -> None:
    async with in_process(db_url, tmp_path, max_request_size=64 * 1024 * 1024) as app:
        headers = app.auth(app.write)
        big = "x" * (3 * 1024 * 1024)
        response = await app.http.post(
            "/api/v1/workflows", json=start_body("big", big), headers=headers
        )
        body = assert_problem(response, 413)
        assert body["error"] == "PayloadSizeError"
        assert "payload limit" in str(body["detail"])
        assert (await app.http.get("/api/v1/workflows/big", headers=headers)).status_code == 404
    async with in_process(db_url, tmp_path / "small", max_request_size=1000) as app:
        headers = app.auth(app.write)
        body = start_body("big", "x" * 2000)
        assert_problem(await app.http.post("/api/v1/workflows", json=body, headers=headers), 413)

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(3):
                yield b" " * 600

        chunked = await app.http.post(
            "/api/v1/workflows",
            content=chunks(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert_problem(chunked, 413)


async def test_requests_that_do_not_match_the_api_are_400_or_415(local: InProcess) -> None:
    headers = local.auth(local.write)
    missing = await local.http.post(
        "/api/v1/workflows", json={"task_queue": "shop"}, headers=headers
    )
    body = assert_problem(missing, 400)
    assert body["title"] == "Invalid request"
    assert {"location": ["body", "workflow_type"], "message": "Field required"} in body["errors"]  # type: ignore[operator]
    unknown = await local.http.post(
        "/api/v1/workflows", json={**start_body("a"), "colour": "red"}, headers=headers
    )
    assert_problem(unknown, 400)
    not_json = await local.http.post(
        "/api/v1/workflows",
        content=b'{"workflow_type": "Checkout"}',
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert_problem(not_json, 415)
    too_big = await local.http.post(
        "/api/v1/workflows", json=start_body("n", 2**70), headers=headers
    )
    assert "64-bit" in str(assert_problem(too_big, 400)["detail"])
    bad_token = await local.http.get(
        "/api/v1/workflows", params={"next_page_token": "%%%"}, headers=headers
    )
    assert_problem(bad_token, 400)
    assert_problem(await local.http.get("/api/v1/nothing-here", headers=headers), 404)
    wrong_method = await local.http.put("/api/v1/workflows", headers=headers)
    assert_problem(wrong_method, 405)
    assert "GET" in wrong_method.headers["allow"]


async def test_ids_in_paths_are_percent_encoded(on_store: InProcess) -> None:
    headers = on_store.auth(on_store.write)
    for workflow_id in ("orders/42", "50%/off", "count", "a b?c#d", "ünï/cødé"):
        started = await on_store.http.post(
            "/api/v1/workflows", json=start_body(workflow_id), headers=headers
        )
        assert started.status_code == 201, started.text
        path = "/api/v1/workflows/" + quote(workflow_id, safe="")
        if workflow_id == "count":
            path = "/api/v1/workflows/%63ount"  # the route's own word, spelled encoded
        described = await on_store.http.get(path, headers=headers)
        assert described.status_code == 200, (workflow_id, described.text)
        assert described.json()["workflow_id"] == workflow_id
        history = await on_store.http.get(path + "/history", headers=headers)
        assert history.json()["workflow_id"] == workflow_id
    count = await on_store.http.get("/api/v1/workflows/count", headers=headers)
    assert count.json() == {"count": 5}


async def test_markup_in_ids_and_values_comes_back_as_json_text(local: InProcess) -> None:
    headers = local.auth(local.write)
    script = "<script>alert(1)</script>"
    started = await local.http.post(
        "/api/v1/workflows", json=start_body(script, script, {script: script}), headers=headers
    )
    assert started.status_code == 201
    path = "/api/v1/workflows/" + quote(script, safe="")
    for url in (path, path + "/history?decode=true", "/api/v1/workflows", path + "/result"):
        response = await local.http.get(url, headers=headers)
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-content-type-options"] == "nosniff"
    described = (await local.http.get(path, headers=headers)).json()
    assert described["workflow_id"] == script
    history = (await local.http.get(path + "/history?decode=true", headers=headers)).json()
    assert history["events"][0]["attributes"]["input"] == [script, {script: script}]
    missing = await local.http.get(
        "/api/v1/workflows/" + quote(script + "x", safe=""), headers=headers
    )
    assert missing.headers["content-type"] == PROBLEM
    assert missing.headers["x-content-type-options"] == "nosniff"
    assert script in missing.json()["detail"]


async def test_history_and_list_tokens_belong_to_their_listing(local: InProcess) -> None:
    headers = local.auth(local.write)
    one = (await local.http.post("/api/v1/workflows", json=start_body("h"), headers=headers)).json()
    page = await local.http.get(
        "/api/v1/workflows/h/history", params={"page_size": 1}, headers=headers
    )
    token = page.json()["next_page_token"]
    assert page.json()["events"][0]["event_id"] == 1
    # The history has one event so far: no next page.
    assert token is None
    handle = local.client.get_workflow_handle("h")
    await handle.signal("approve", "x")
    page = await local.http.get(
        "/api/v1/workflows/h/history", params={"page_size": 1}, headers=headers
    )
    token = page.json()["next_page_token"]
    assert token is not None
    other_run = await local.http.get(
        "/api/v1/workflows/h/history",
        params={"next_page_token": token, "run_id": "not-" + str(one["run_id"])},
        headers=headers,
    )
    assert "is a token of run" in str(assert_problem(other_run, 400)["detail"])
    second = await local.http.get(
        "/api/v1/workflows/h/history", params={"next_page_token": token}, headers=headers
    )
    assert [e["event_id"] for e in second.json()["events"]] == [2]


async def test_the_app_mounts_under_a_prefix_of_another(tmp_path: Path) -> None:
    token, _ = append_token(tmp_path / "tokens", Role.WRITE)
    client = await Client.connect(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        outer = Starlette(
            routes=[Mount("/perdure", app=create_app(client, token_file=tmp_path / "tokens"))]
        )
        transport = httpx.ASGITransport(app=outer)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            headers = {"Authorization": f"Bearer {token}"}
            started = await http.post(
                "/perdure/api/v1/workflows", json=start_body("a/b"), headers=headers
            )
            assert started.status_code == 201, started.text
            described = await http.get("/perdure/api/v1/workflows/a%2Fb", headers=headers)
            assert described.json()["workflow_id"] == "a/b"
            login = await http.get(f"/perdure/?token={token}")
            assert login.headers["location"] == "/perdure/"
            assert "Path=/perdure" in login.headers["set-cookie"]
            docs = await http.get("/perdure/api/v1/docs", headers=headers)
            assert '"/perdure/api/v1/openapi.json"' in docs.text
            assert (await http.get("/perdure/healthz")).json() == {"status": "ok"}
    finally:
        await client.close()


async def test_a_malformed_task_token_is_400(local: InProcess) -> None:
    headers = local.auth(local.write)
    forged = base64.urlsafe_b64encode(b'["default", "wf", "run", [1], 1]').decode()
    for token in ("not-base64!", forged, "ünïcode"):
        response = await local.http.post(
            "/api/v1/activities/complete", json={"task_token": token}, headers=headers
        )
        assert "activity task token" in str(assert_problem(response, 400)["detail"])
