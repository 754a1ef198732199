"""``create_app``: the HTTP API as one ASGI application, to run under ``perdure server`` or
to mount in an application of your own."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.middleware import Middleware

from perdure.client import Client
from perdure.server import (
    _activities,
    _docs,
    _metrics,
    _problems,
    _schedules,
    _service,
    _time_travel,
    _ui,
    _workflow_actions,
    _workflows,
)
from perdure.server._auth import PUBLIC_PATHS, AuthMiddleware
from perdure.server._body import DEFAULT_MAX_BODY, BodyMiddleware
from perdure.server._docs import OPENAPI_URL
from perdure.server._headers import SecurityHeadersMiddleware
from perdure.server._paths import RawPathMiddleware
from perdure.server._state import ServerState
from perdure.server._tokens import TokenFile

if TYPE_CHECKING:
    from perdure.contrib.prometheus import PrometheusMetrics


def create_app(
    client: Client,
    *,
    token_file: str | os.PathLike[str] | None = None,
    insecure_no_auth: bool = False,
    workflows: Sequence[type] = (),
    max_request_size: int = DEFAULT_MAX_BODY,
    session_max_age: timedelta = timedelta(days=7),
    metrics: PrometheusMetrics | None = None,
    public_metrics: bool = False,
) -> FastAPI:
    """The HTTP API (and, with it, the web UI) of the database ``client`` is connected to,
    as an ASGI application.

    Every route but ``/healthz`` and ``/readyz`` needs a token of ``token_file`` (``TOKEN
    ROLE`` per line; ``perdure server token create --token-file PATH`` makes one) as a bearer
    token, or the session cookie its login URL (``/?token=TOKEN``) sets. The app serves on
    the client's event loop; close the client after the server stops.

    Example::

        client = await Client.connect("sqlite:///app.db")
        api = create_app(client, token_file="app.db.tokens")
        my_app.mount("/perdure", api)   # Starlette / FastAPI

    Args:
        client: the client whose database the API serves.
        token_file: the token file; required unless ``insecure_no_auth``.
        insecure_no_auth: serve everyone, with every right: only for a server reachable from
            this machine alone (requests to other host names than loopback are refused).
        workflows: the workflow classes of the application (kept for features that replay
            histories against the code).
        max_request_size: the largest request body accepted, in bytes (413 beyond).
        session_max_age: how long a login lasts.
        metrics: what ``GET /metrics`` serves, after reading the store gauges into it; by
            default a ``PrometheusMetrics`` on a registry of the app's own (if
            ``prometheus_client`` is installed).
        public_metrics: serve ``/metrics`` without a token (it shows queue and type names
            and counts, no data); by default it needs one, a ``read`` token is enough.

    Raises:
        ValueError: neither ``token_file`` nor ``insecure_no_auth``, or both; a malformed
            token file.
        FileNotFoundError: no file at ``token_file``.
    """
    if insecure_no_auth and token_file is not None:
        raise ValueError("Give token_file or insecure_no_auth=True, not both")
    if not insecure_no_auth and token_file is None:
        raise ValueError(
            "The API needs a token file (token_file=PATH; perdure server token create "
            "--token-file PATH makes one), or insecure_no_auth=True for a server that only "
            "this machine can reach"
        )
    tokens = None if token_file is None else TokenFile(Path(token_file))
    app = FastAPI(
        title="perdure",
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
        middleware=[
            # Outermost first: headers on every answer, route on raw paths, then
            # authenticate, then read the body.
            Middleware(SecurityHeadersMiddleware),
            Middleware(RawPathMiddleware),
            Middleware(
                AuthMiddleware,
                tokens=tokens,
                session_max_age=session_max_age.total_seconds(),
                public=PUBLIC_PATHS | {"/metrics"} if public_metrics else PUBLIC_PATHS,
            ),
            Middleware(BodyMiddleware, max_body=max_request_size),
        ],
    )
    app.state.perdure = ServerState(
        client=client,
        workflows=tuple(workflows),
        metrics=metrics if metrics is not None else _metrics.server_metrics(),
    )
    _problems.install(app)
    for module in (
        _service,
        _metrics,
        _workflows,
        _workflow_actions,
        _time_travel,
        _schedules,
        _activities,
    ):
        app.include_router(module.router)
    _docs.install(app)
    _ui.install(app)
    return app
