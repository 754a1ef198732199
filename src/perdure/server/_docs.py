"""The OpenAPI document at ``/api/v1/openapi.json``, and its interactive page at
``/api/v1/docs`` (Swagger UI, served from the ``fastapi-offline`` package's copy, so the page
needs no CDN and works offline).

FastAPI writes the document from the routes' typed models; :func:`openapi_document` adds what
it cannot know: the problem documents (``application/problem+json``) every route may answer
with in place of FastAPI's own validation error, and the two ways to authenticate.
"""

from __future__ import annotations

import html
from importlib import metadata, resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

from perdure.server._models import Problem
from perdure.server._problems import PROBLEM_TYPE
from perdure.server._session import CSRF_COOKIE, SESSION_COOKIE

OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/v1/docs"
_STATIC_URL = "/api/v1/docs/static"

_DESCRIPTION = """\
The HTTP API of a perdure database: the same operations as the Python client and the
`perdure` command, and the same JSON shapes as its `-o json`.

Authenticate with `Authorization: Bearer TOKEN` (a token of the server's token file), or with
the session cookie the login URL (`/?token=TOKEN`) sets, in which case state-changing requests
carry the header `X-Perdure-CSRF`. A `read` token may read and ask queries; the rest needs a
`write` token. Ids in paths are percent-encoded (a workflow id may contain `/`). Errors are RFC
9457 problem documents."""

_COMMON_PROBLEMS = {
    "400": "The request does not match the API (or a value is not acceptable)",
    "401": "No valid bearer token or session cookie",
    "403": "The token may not do this (read-only), or the CSRF header is missing",
    "413": "The request body is over the server's limit",
    "415": "The request body is not JSON",
}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The document, built once."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title="perdure",
        version=metadata.version("perdure"),
        description=_DESCRIPTION,
        routes=app.routes,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "A token of the token file"},
        "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
    }
    doc["security"] = [{"bearer": []}, {"session": []}]
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            _add_problems(operation)
    app.openapi_schema = doc
    return doc


def _add_problems(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    validation = responses.get("422", {}).get("content", {}).get("application/json", {})
    if validation.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]  # FastAPI's own; ours is a 400 problem document
    for status, response in responses.items():
        if status[0] in "45" and "application/json" in response.get("content", {}):
            response["content"] = {PROBLEM_TYPE: response["content"]["application/json"]}
    wanted = []
    if operation.get("parameters") or "requestBody" in operation:
        wanted.append("400")
    if operation.get("security") != []:
        wanted += ["401", "403"]
    if "requestBody" in operation:
        wanted += ["413", "415"]
    for status in wanted:
        responses.setdefault(status, _problem_response(_COMMON_PROBLEMS[status]))


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>perdure API</title>
<link rel="stylesheet" href="{static}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script>
function csrf() {{
  const found = document.cookie.split("; ").find((c) => c.startsWith("{csrf_cookie}="));
  return found ? decodeURIComponent(found.split("=")[1]) : "";
}}
SwaggerUIBundle({{
  url: "{openapi}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  requestInterceptor: (request) => {{
    const token = csrf();
    if (token) request.headers["X-Perdure-CSRF"] = token;
    return request;
  }},
}});
</script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve the document and the docs page."""
    static = resources.files("fastapi_offline") / "static"
    app.mount(_STATIC_URL, StaticFiles(directory=str(static)), name="perdure-docs-static")

    def build() -> dict[str, Any]:
        return openapi_document(app)

    app.openapi = build  # type: ignore[method-assign]

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs_page(request: Request) -> Response:
        root = html.escape(request.scope.get("root_path", ""))
        return HTMLResponse(
            _PAGE.format(
                static=root + _STATIC_URL,
                openapi=root + OPENAPI_URL,
                csrf_cookie=CSRF_COOKIE,
            )
        )
