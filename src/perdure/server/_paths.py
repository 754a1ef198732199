"""Ids in paths: a workflow id may contain ``/``, so it travels percent-encoded
(``/api/v1/workflows/orders%2F42/history``) and the API routes on the path as it was sent.

ASGI servers decode the path before the application sees it, which would turn ``orders%2F42``
into two segments. So for the API's paths, :class:`RawPathMiddleware` routes on the raw path,
still encoded, and :class:`UnquotedRoute` decodes each path parameter once it is matched.
A route's own words (``history``, ``count``) are matched as sent: the workflow whose id is
``count`` is reached as ``/api/v1/workflows/%63ount``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import unquote

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

API_PREFIX = "/api/"


def route_path(scope: Scope) -> str:
    """The path within this application (without the prefix it is mounted under)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class RawPathMiddleware:
    """Route the API's requests on their raw (percent-encoded) path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_path(scope).startswith(API_PREFIX):
            raw = scope.get("raw_path")
            if raw:
                # The raw path is ASCII (a client percent-encodes everything else).
                path = raw.split(b"?", 1)[0].decode("latin-1")
                root = scope.get("root_path", "")
                # Mounted under a prefix, the raw path carries it: keep it as Starlette
                # expects (scope["path"] starts with root_path).
                if root and not path.startswith(root):
                    path = root + path
                scope = {**scope, "path": path}
        await self.app(scope, receive, send)


class UnquotedRoute(APIRoute):
    """An API route whose path parameters arrive percent-decoded (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def unquoted(request: Request) -> Response:
            params = request.scope.get("path_params")
            if params:
                request.scope["path_params"] = {k: unquote(v) for k, v in params.items()}
            return await handler(request)

        return unquoted
