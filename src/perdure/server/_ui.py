"""The web UI: plain HTML, CSS and ES modules shipped in the package (no build step, no CDN),
served by the same app as the API, behind the same authentication.

Every page is ``index.html``; its script reads the path and the query string (``/``: the
workflows, ``/workflow?id=...``, ``/schedules``, ``/schedule?id=...``) and builds the page from
the API's JSON with ``textContent`` only, so no value of the database is ever parsed as HTML.
The pages also carry a Content-Security-Policy that runs no script but the UI's own.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, Response

UI_DIR = Path(__file__).parent / "ui"
PAGES = ("/", "/workflow", "/schedules", "/schedule")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


async def _page() -> Response:
    return FileResponse(
        UI_DIR / "index.html",
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"},
    )


def install(app: FastAPI) -> None:
    """Serve the UI's pages and its assets (under ``/ui/``)."""
    for path in PAGES:
        app.add_api_route(path, _page, methods=["GET"], include_in_schema=False)
    app.mount("/ui", StaticFiles(directory=UI_DIR), name="ui")
