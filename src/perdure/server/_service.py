"""The routes about the server itself: health (no token needed, no data shown) and the
caller's session."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from starlette.responses import Response

from perdure.server._auth import principal_of
from perdure.server._models import Done, Health, SessionInfo
from perdure.server._openapi_params import problems
from perdure.server._problems import problem
from perdure.server._session import CSRF_COOKIE, SESSION_COOKIE
from perdure.server._state import JSON, server_state

log = logging.getLogger("perdure.server")

# How long /readyz waits for the database before saying it is not ready.
READY_TIMEOUT = 5.0
_PROBE = "WorkflowId = '__perdure_readyz__'"

router = APIRouter()


@router.get(
    "/healthz",
    response_model=Health,
    tags=["health"],
    summary="The server is up (no token needed)",
    openapi_extra={"security": []},
)
async def healthz() -> Response:
    return JSON({"status": "ok"})


@router.get(
    "/readyz",
    response_model=Health,
    responses=problems(503),
    tags=["health"],
    summary="The server can reach its database (no token needed)",
    openapi_extra={"security": []},
)
async def readyz(request: Request) -> Response:
    try:
        await asyncio.wait_for(server_state(request).client.count_workflows(_PROBE), READY_TIMEOUT)
    except Exception as exc:
        log.warning("/readyz: the database is not reachable: %s", exc)
        return problem(503, "The database is not reachable", title="Not ready")
    return JSON({"status": "ok"})


@router.get(
    "/api/v1/session",
    response_model=SessionInfo,
    tags=["session"],
    summary="Who is asking: how, with which role, and the CSRF value of a cookie session",
)
async def session_info(request: Request) -> Response:
    principal = principal_of(request)
    return JSON(
        {"auth": principal.auth, "role": principal.role.value, "csrf_token": principal.csrf}
    )


@router.delete(
    "/api/v1/session",
    response_model=Done,
    responses=problems(),
    tags=["session"],
    summary="Log out: forget the session cookie",
)
async def end_session(request: Request) -> Response:
    response = JSON({"ok": True})
    path = request.scope.get("root_path", "") or "/"
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path=path, samesite="strict")
    return response
