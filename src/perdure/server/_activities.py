"""Finishing an activity that completes asynchronously, by its task token: the routes a
webhook calls (``activity.info().task_token``, which is ASCII, passed as text)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from perdure._errors import ApplicationError
from perdure.client import AsyncActivityCancelledError, AsyncActivityHandle
from perdure.server._models import (
    ActivityCompleteBody,
    ActivityFailBody,
    ActivityHeartbeatBody,
    Done,
    HeartbeatAnswer,
)
from perdure.server._openapi_params import problems
from perdure.server._state import JSON, server_state, user_values

router = APIRouter(prefix="/api/v1/activities", tags=["activities"])


def _handle(request: Request, task_token: str) -> AsyncActivityHandle:
    client = server_state(request).client
    try:
        raw = task_token.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("Not a perdure activity task token: it is ASCII text") from None
    return client.get_async_activity_handle(task_token=raw)


@router.post(
    "/complete",
    response_model=Done,
    responses=problems(404, 413),
    summary="Complete an activity with a result",
)
async def complete_activity(request: Request, body: ActivityCompleteBody) -> Response:
    with user_values():
        await _handle(request, body.task_token).complete(body.result)
    return JSON({"ok": True})


@router.post(
    "/fail",
    response_model=Done,
    responses=problems(404, 413),
    summary="Fail this attempt of an activity (its retry policy decides what comes next)",
)
async def fail_activity(request: Request, body: ActivityFailBody) -> Response:
    failure = body.failure
    error = ApplicationError(
        failure.message,
        *failure.details,
        type=failure.type,
        non_retryable=failure.non_retryable,
    )
    with user_values():
        await _handle(request, body.task_token).fail(error)
    return JSON({"ok": True})


@router.post(
    "/heartbeat",
    response_model=HeartbeatAnswer,
    responses=problems(404, 413),
    summary="Record an activity's progress; says whether its cancellation was requested",
)
async def heartbeat_activity(request: Request, body: ActivityHeartbeatBody) -> Response:
    try:
        with user_values():
            await _handle(request, body.task_token).heartbeat(*body.details)
    except AsyncActivityCancelledError:
        return JSON({"cancel_requested": True})
    return JSON({"cancel_requested": False})
