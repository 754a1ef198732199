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
from starlette.responses import FileResponse, HTMLResponse, Response

UI_DIR = Path(__file__).parent / "ui"
PAGES = ("/", "/workflow", "/schedules", "/schedule")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


_LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>perdure: log in</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; background: #f6f7f9; color: #1b1f29; margin: 0;
  display: grid; place-items: center; min-height: 100vh; }
main { background: #fff; border: 1px solid #dde2e8; border-radius: 12px; padding: 28px 32px;
  max-width: 520px; }
h1 { font-size: 20px; margin: 0 0 8px; } code { background: #f1f3f6; padding: 1px 5px; }
@media (prefers-color-scheme: dark) { body { background: #0f1117; color: #e6e8ef; }
  main { background: #171a23; border-color: #2a2f3d; } code { background: #1e2230; } }
</style></head>
<body><main><h1>Log in to perdure</h1>
<p>Open the login URL that <code>perdure server</code> printed when it started
(<code>http://HOST:PORT/?token=TOKEN</code>), or make a token with
<code>perdure server token create</code> and open <code>/?token=TOKEN</code>.</p>
</main></body></html>
"""


def login_page(refusal: Response) -> Response:
    """The 401 a browser gets for a page without a session: how to log in, as a page (with
    the refusal's headers)."""
    headers = {k: v for k, v in refusal.headers.items() if k.lower() == "www-authenticate"}
    headers["Content-Security-Policy"] = CSP.replace(
        "style-src 'self'", "style-src 'unsafe-inline'"
    )
    return HTMLResponse(_LOGIN, status_code=401, headers=headers)


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
