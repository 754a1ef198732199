"""Errors as RFC 9457 problem documents (``application/problem+json``), with the messages of
the Python API.

::

    {"type": "about:blank", "title": "Workflow not found", "status": 404,
     "detail": "No workflow execution with id 'order-9'", "error": "WorkflowNotFoundError"}

``error`` names the Python exception, for programs that branch on it; some problems add
members of their own: ``position`` (1-based column) and ``query`` for a bad visibility query,
``errors`` for a request that does not match the API's schema, ``failure`` for a failed update.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from perdure._errors import (
    InvalidArgumentError,
    PayloadSizeError,
    PerdureError,
    RPCTimeoutOrCancelledError,
    ScheduleAlreadyRunningError,
    ScheduleNotFoundError,
    SearchAttributeTypeError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from perdure._operate.shapes import failure_json
from perdure.client import AsyncActivityNotFoundError, VisibilityQueryError

log = logging.getLogger("perdure.server")

PROBLEM_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
    504: "Gateway timeout",
}


class BadValueError(Exception):
    """A value of the request that the data converter cannot encode (a JSON integer beyond
    64 bits, say): the request's fault, 400."""

    def __init__(self, cause: TypeError) -> None:
        super().__init__(str(cause))
        self.kind = type(cause).__name__


def dump(value: Any) -> bytes:
    """JSON as the API writes it: orjson, non-string keys allowed, other values by ``str``."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **members: Any,
) -> Response:
    """A problem document response."""
    body = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **members,
    }
    return Response(dump(body), status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def problem_for(exc: Exception) -> Response:
    """The problem document of an error the client raised."""
    name = type(exc).__name__
    detail = str(exc) or name
    if isinstance(exc, WorkflowNotFoundError):
        return problem(404, detail, title="Workflow not found", error=name)
    if isinstance(exc, ScheduleNotFoundError):
        return problem(404, detail, title="Schedule not found", error=name)
    if isinstance(exc, ScheduleAlreadyRunningError):
        return problem(409, detail, title="Schedule already exists", error=name)
    if isinstance(exc, AsyncActivityNotFoundError):
        return problem(404, detail, title="Activity not found", error=name)
    if isinstance(exc, WorkflowAlreadyStartedError):
        return problem(
            409,
            detail,
            title="Workflow already started",
            error=name,
            workflow_id=exc.workflow_id,
            run_id=exc.run_id,
        )
    if isinstance(exc, VisibilityQueryError):
        return problem(
            400,
            detail,
            title="Bad visibility query",
            error=name,
            query=exc.query,
            position=exc.column,
            reason=exc.reason,
        )
    if isinstance(exc, PayloadSizeError):
        return problem(413, detail, title="Payload too large", error=name)
    if isinstance(exc, WorkflowQueryFailedError):
        return problem(422, detail, title="Query failed", error=name)
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause or exc
        return problem(
            422,
            f"{detail}: {cause}" if exc.cause else detail,
            title="Update failed",
            error=name,
            failure=failure_json(cause),
        )
    if isinstance(exc, RPCTimeoutOrCancelledError):
        return problem(504, detail, title="No worker answered", error=name)
    if isinstance(exc, BadValueError):
        return problem(400, detail, error=exc.kind)
    if isinstance(exc, InvalidArgumentError | SearchAttributeTypeError | ValueError):
        return problem(400, detail, error=name)
    if isinstance(exc, PerdureError):
        log.exception("The operation failed")
        return problem(500, detail, error=name)
    # Not ours: the ASGI server logs its traceback (Starlette re-raises it after this).
    return problem(500, "An unexpected error: the server's log has its traceback.", error=name)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # The input itself is left out: it can be large, and it is the caller's own.
    return [
        {"location": [str(part) for part in e.get("loc", ())], "message": e.get("msg", "")}
        for e in exc.errors()
    ]


def install(app: FastAPI) -> None:
    """Make every error of ``app`` a problem document."""

    async def on_validation(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, RequestValidationError):  # pragma: no cover - by registration
            raise exc
        errors = _validation_errors(exc)
        where = ".".join(errors[0]["location"]) if errors else ""
        message = str(errors[0]["message"]) if errors else "invalid"
        return problem(
            400,
            f"{where}: {message}" if where else message,
            title="Invalid request",
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # pragma: no cover - by registration
            raise exc
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No such route: {request.method} {request.url.path}"
        return problem(exc.status_code, detail, headers=dict(exc.headers or {}))

    async def on_error(request: Request, exc: Exception) -> Response:
        return problem_for(exc)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(PerdureError, on_error)
    app.add_exception_handler(ValueError, on_error)
    app.add_exception_handler(BadValueError, on_error)
    app.add_exception_handler(Exception, on_error)
