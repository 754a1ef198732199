"""Authentication and authorization, in process: deny by default, roles, the login URL's
session cookie and its CSRF check, tokens read again when their file changes."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest
from server_support import InProcess

from perdure.client import Client
from perdure.server import create_app
from perdure.server._tokens import Role, append_token, parse_tokens

START = {"workflow_type": "Checkout", "workflow_id": "o-1", "task_queue": "shop", "args": []}


async def every_operation(local: InProcess) -> list[tuple[str, str]]:
    """(method, path) of every operation of the document, with ``x`` for path parameters."""
    doc = (await local.http.get("/api/v1/openapi.json", headers=local.auth(local.read))).json()
    return [
        (method.upper(), re.sub(r"{\w+}", "x", path))
        for path, item in doc["paths"].items()
        for method in item
    ]


async def test_every_route_but_health_needs_a_token(local: InProcess) -> None:
    operations = await every_operation(local)
    assert len(operations) > 15
    extra = [("GET", "/api/v1/openapi.json"), ("GET", "/api/v1/docs"), ("GET", "/")]
    for method, path in [*operations, *extra]:
        if path in ("/healthz", "/readyz"):
            continue
        for headers in ({}, {"Authorization": "Bearer not-a-token-of-the-file"}):
            response = await local.http.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["status"] == 401


async def test_health_needs_no_token_and_shows_no_data(local: InProcess) -> None:
    for path in ("/healthz", "/readyz"):
        response = await local.http.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


async def test_a_read_token_reads_and_asks_queries_but_changes_nothing(local: InProcess) -> None:
    read, write = local.auth(local.read), local.auth(local.write)
    assert (
        await local.http.post("/api/v1/workflows", json=START, headers=write)
    ).status_code == 201
    assert (await local.http.get("/api/v1/workflows", headers=read)).status_code == 200
    assert (await local.http.get("/api/v1/workflows/o-1", headers=read)).status_code == 200
    changes = [
        ("POST", "/api/v1/workflows", START),
        ("POST", "/api/v1/workflows/o-1/signals/approve", {"args": ["x"]}),
        ("POST", "/api/v1/workflows/o-1/updates/set_discount", {"args": [1]}),
        ("POST", "/api/v1/workflows/o-1/cancel", {}),
        ("POST", "/api/v1/workflows/o-1/terminate", {"reason": "no"}),
        ("POST", "/api/v1/workflows/o-1/reset", {"reason": "no"}),
        ("DELETE", "/api/v1/workflows/o-1", None),
        ("POST", "/api/v1/activities/complete", {"task_token": "t"}),
        ("POST", "/api/v1/activities/fail", {"task_token": "t", "failure": {"message": "m"}}),
        ("POST", "/api/v1/activities/heartbeat", {"task_token": "t"}),
    ]
    for method, path, body in changes:
        response = await local.http.request(method, path, json=body, headers=read)
        assert response.status_code == 403, (method, path, response.text)
        assert "read-only" in response.json()["detail"]
    # A query changes nothing: a read token may ask (here: of a workflow that does not exist).
    query = await local.http.post("/api/v1/workflows/nope/queries/status", json={}, headers=read)
    assert query.status_code == 404
    described = (await local.http.get("/api/v1/workflows/o-1", headers=read)).json()
    assert described["status"] == "RUNNING"


def cookies_of(response: httpx.Response) -> dict[str, SimpleCookie]:
    found = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        found[next(iter(cookie))] = cookie
    return found


async def login(local: InProcess, url: str) -> tuple[httpx.Response, str, str]:
    response = await local.http.get(url)
    local.http.cookies.clear()  # each test sends the cookie it means to
    cookies = cookies_of(response)
    return (
        response,
        cookies["perdure_session"]["perdure_session"].value,
        cookies["perdure_csrf"]["perdure_csrf"].value,
    )


async def test_the_login_url_sets_a_strict_http_only_cookie_and_drops_the_token(
    local: InProcess,
) -> None:
    response, _, _ = await login(local, f"/?token={local.write}&tab=running")
    assert response.status_code == 303
    assert response.headers["location"] == "/?tab=running"
    assert local.write not in response.headers["location"]
    session = cookies_of(response)["perdure_session"]["perdure_session"]
    assert session["httponly"] is True
    assert session["samesite"] == "strict"
    assert session["path"] == "/"
    assert local.write not in session.value
    csrf = cookies_of(response)["perdure_csrf"]["perdure_csrf"]
    assert not csrf["httponly"]  # the UI's script reads it
    response, _, _ = await login(local, f"/login?token={local.read}")
    assert response.headers["location"] == "/"
    response, session, _ = await login(local, f"/api/v1/docs?token={local.read}")
    assert response.headers["location"] == "/api/v1/docs"
    docs = await local.http.get("/api/v1/docs", headers={"Cookie": f"perdure_session={session}"})
    assert "SwaggerUIBundle" in docs.text
    # An API call is not a login: a token in its URL would end up in logs.
    api = await local.http.get(f"/api/v1/workflows?token={local.write}")
    assert api.status_code == 401
    wrong = await local.http.get("/?token=not-a-token-of-the-file")
    assert wrong.status_code == 401
    assert "perdure_session" not in wrong.headers.get("set-cookie", "")


async def test_a_cookie_session_needs_the_csrf_header_to_change_anything(
    local: InProcess,
) -> None:
    _, session, csrf = await login(local, f"/?token={local.write}")
    cookie = {"Cookie": f"perdure_session={session}"}
    who = (await local.http.get("/api/v1/session", headers=cookie)).json()
    assert who == {"auth": "cookie", "role": "write", "csrf_token": csrf}
    assert (await local.http.get("/api/v1/workflows", headers=cookie)).status_code == 200
    for headers in (cookie, {**cookie, "X-Perdure-CSRF": "wrong"}):
        refused = await local.http.post("/api/v1/workflows", json=START, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["title"] == "CSRF check failed"
    accepted = await local.http.post(
        "/api/v1/workflows", json=START, headers={**cookie, "X-Perdure-CSRF": csrf}
    )
    assert accepted.status_code == 201
    # A bearer request needs no CSRF header: a browser never adds Authorization itself.
    bearer = await local.http.post(
        "/api/v1/workflows/o-1/signals/approve", json={}, headers=local.auth(local.write)
    )
    assert bearer.status_code == 200
    forged = session[:-2] + ("AA" if not session.endswith("AA") else "BB")
    assert (
        await local.http.get("/api/v1/workflows", headers={"Cookie": f"perdure_session={forged}"})
    ).status_code == 401


async def test_a_read_session_cannot_change_anything_even_with_csrf(local: InProcess) -> None:
    _, session, csrf = await login(local, f"/?token={local.read}")
    headers = {"Cookie": f"perdure_session={session}", "X-Perdure-CSRF": csrf}
    refused = await local.http.post("/api/v1/workflows", json=START, headers=headers)
    assert refused.status_code == 403
    assert (await local.http.delete("/api/v1/session", headers=headers)).status_code == 200


async def test_tokens_are_read_again_when_their_file_changes(local: InProcess) -> None:
    _, session, _ = await login(local, f"/?token={local.write}")
    added, _ = append_token(local.token_file, Role.READ)
    assert (await local.http.get("/api/v1/workflows", headers=local.auth(added))).status_code == 200
    # Removing the write token revokes it, and the sessions it opened.
    lines = local.token_file.read_text().splitlines()
    local.token_file.write_text("\n".join(x for x in lines if local.write not in x) + "\n")
    assert (
        await local.http.get("/api/v1/workflows", headers=local.auth(local.write))
    ).status_code == 401
    assert (
        await local.http.get("/api/v1/workflows", headers={"Cookie": f"perdure_session={session}"})
    ).status_code == 401


async def test_without_auth_only_loopback_hosts_are_answered(tmp_path: Path) -> None:
    client = await Client.connect(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        app = create_app(client, insecure_no_auth=True)
        transport = httpx.ASGITransport(app=app)
        for host in ("127.0.0.1", "localhost", "[::1]"):
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}:8233") as h:
                assert (await h.get("/api/v1/workflows")).status_code == 200
                who = (await h.get("/api/v1/session")).json()
                assert who == {"auth": "none", "role": "write", "csrf_token": None}
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as h:
            rebound = await h.get("/api/v1/workflows", headers={"Host": "evil.example"})
            assert rebound.status_code == 403
            cross = await h.post(
                "/api/v1/workflows", json=START, headers={"Origin": "http://evil.example"}
            )
            assert cross.status_code == 403
    finally:
        await client.close()


async def test_create_app_denies_by_default(tmp_path: Path) -> None:
    client = await Client.connect(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with pytest.raises(ValueError, match="needs a token file"):
            create_app(client)
        with pytest.raises(FileNotFoundError, match="perdure server token create"):
            create_app(client, token_file=tmp_path / "missing")
        bad = tmp_path / "bad"
        bad.write_text("# tokens\nshort write\n")
        with pytest.raises(ValueError, match="line 2: a token of 5 characters"):
            create_app(client, token_file=bad)
    finally:
        await client.close()


def test_the_token_file_format() -> None:
    text = "# a comment\n\n" + "a" * 20 + "\n" + "b" * 20 + " read\n"
    tokens = sorted(parse_tokens(text, "f").values(), key=lambda t: t.role.value)
    assert [t.role for t in tokens] == [Role.READ, Role.WRITE]
    with pytest.raises(ValueError, match="f, line 1: the role is 'admin'"):
        parse_tokens("c" * 20 + " admin\n", "f")
    with pytest.raises(ValueError, match="expected TOKEN ROLE"):
        parse_tokens("c" * 20 + " read extra\n", "f")
