"""Request bodies the API takes: JSON, and at most so large (413 beyond).

A body is read whole before the route runs (the API's bodies are small: one payload may be at
most 2 MiB), so an oversized one is refused with a problem document, whether it announced
its length or came in chunks. A body that is not declared as JSON is refused (415): a browser
page of another site can send a form or ``text/plain`` without asking first, not JSON.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perdure.server._paths import API_PREFIX, route_path
from perdure.server._problems import problem

# A request may carry up to 2 MiB of payloads (the converter's limit for one call), as JSON
# text with some room for escaping and the rest of the body.
DEFAULT_MAX_BODY = 4 * 1024 * 1024


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


class BodyMiddleware:
    """Refuse API request bodies that are too large (413) or not JSON (415)."""

    def __init__(self, app: ASGIApp, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not route_path(scope).startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and not _is_json(headers.get(b"content-type", b"").decode("latin-1")):
            response = problem(
                415,
                "The request body must be JSON: send it with Content-Type: application/json",
                title="Unsupported media type",
            )
            await response(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            f"The request body is over the server's limit of {self.max_body:,} bytes; a "
            "workflow's payloads are at most 2 MiB a call: pass large data by reference",
            title="Content too large",
        )
        await response(scope, receive, send)
