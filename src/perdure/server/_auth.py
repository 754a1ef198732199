"""Who may do what, decided for every request before any route runs (deny by default).

- ``/healthz`` and ``/readyz`` need nothing (and show no data); nor does ``/metrics`` if the
  app was made with ``public_metrics=True``.
- Otherwise a request needs ``Authorization: Bearer TOKEN`` with a token of the token file,
  or the UI's session cookie (:mod:`perdure.server._session`); without either: 401 with
  ``WWW-Authenticate: Bearer``.
- A ``read`` token may read (GET) and ask queries (which change nothing: Temporal's
  authorizer counts ``QueryWorkflow`` as read-only too); anything else needs ``write``: 403.
- A state-changing request made with the session cookie needs the ``X-Perdure-CSRF`` header
  (403 without it); bearer requests need none, since a browser never adds that header itself.
- The login URL: a GET of a page (not under ``/api/``, or the API's docs page) with
  ``?token=TOKEN`` sets the session cookie and redirects to the same page without the token
  (``/login?token=`` to ``/``).

With ``insecure_no_auth`` every request may do everything, so the server must only be
reachable from this machine: ``perdure server`` refuses the flag unless it listens on loopback,
and requests whose ``Host`` is not a loopback name are refused (a web page cannot then reach
the server through a DNS name of its own pointing at 127.0.0.1).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from perdure.server._paths import API_PREFIX, route_path
from perdure.server._problems import problem
from perdure.server._session import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, issue, verify
from perdure.server._tokens import Role, TokenFile
from perdure.server._ui import login_page

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
# A page a browser opens (not an API call): the login URL may point at it.
DOCS_PAGE = "/api/v1/docs"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# State-changing methods a read token may use on these paths: a query changes nothing, and
# anyone may end their own session.
_READ_ALLOWED = [
    ("POST", re.compile(r"^/api/v1/workflows/[^/]+/queries/[^/]+$")),
    ("DELETE", re.compile(r"^/api/v1/session$")),
]
STATE_KEY = "perdure_auth"


@dataclass(frozen=True)
class Principal:
    """Who is asking, and with what."""

    auth: Literal["bearer", "cookie", "none"]
    role: Role
    csrf: str | None = None


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8233`` is ``::1``)."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


def needs_write(method: str, path: str) -> bool:
    if method in SAFE_METHODS:
        return False
    return not any(method == m and pattern.match(path) for m, pattern in _READ_ALLOWED)


def _unauthorized(detail: str, *, invalid: bool = False) -> Response:
    challenge = 'Bearer realm="perdure"' + (', error="invalid_token"' if invalid else "")
    return problem(401, detail, title="Unauthorized", headers={"WWW-Authenticate": challenge})


class AuthMiddleware:
    """Authenticate and authorize every HTTP request (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: TokenFile | None,
        session_max_age: float,
        public: frozenset[str] = PUBLIC_PATHS,
    ) -> None:
        self.app = app
        self.public = public
        self.tokens = tokens
        self.session_max_age = session_max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if scope["type"] == "http" and path in self.public:
            await self.app(scope, receive, send)
            return
        decision = self._decide(scope, path)
        if isinstance(decision, Response):
            if scope["type"] == "http":
                await decision(scope, receive, send)
            else:  # a websocket: refuse the handshake
                await send({"type": "websocket.close", "code": 1008})
            return
        scope.setdefault("state", {})[STATE_KEY] = decision
        await self.app(scope, receive, send)

    def _decide(self, scope: Scope, path: str) -> Principal | Response:
        method = scope.get("method", "GET")
        headers = Headers(scope=scope)
        tokens = self.tokens
        if tokens is None:
            return self._no_auth(headers, method)
        request = Request(scope)
        if (
            scope["type"] == "http"
            and method in ("GET", "HEAD")
            and (not path.startswith(API_PREFIX) or path == DOCS_PAGE)
            and "token" in request.query_params
        ):
            return self._login(tokens, request, path)
        principal = self._authenticate(tokens, request, headers)
        if isinstance(principal, Response):
            if not path.startswith(API_PREFIX) and "text/html" in headers.get("accept", ""):
                return login_page(principal)  # a person at a browser: say how to log in
            return principal
        if principal.auth == "cookie" and method not in SAFE_METHODS:
            sent = headers.get(CSRF_HEADER, "")
            if not sent or principal.csrf is None or not _equal(sent, principal.csrf):
                return problem(
                    403,
                    f"A request made with the session cookie must carry the {CSRF_HEADER} "
                    f"header (the value of the {CSRF_COOKIE} cookie)",
                    title="CSRF check failed",
                )
        if principal.role is not Role.WRITE and needs_write(method, path):
            return problem(
                403,
                f"This token is {principal.role.value}-only: {method} {path} needs a write "
                "token (perdure server token create)",
                title="Forbidden",
            )
        return principal

    def _no_auth(self, headers: Headers, method: str) -> Principal | Response:
        if host_name(headers.get("host", "")) not in LOOPBACK_HOSTS:
            return problem(
                403,
                "This server runs without authentication and answers only requests to "
                "127.0.0.1, localhost or [::1]",
                title="Forbidden",
            )
        origin = headers.get("origin")
        if origin and method not in SAFE_METHODS:
            origin_host = origin.partition("://")[2]
            if origin_host != headers.get("host", ""):
                return problem(403, f"A request from {origin} is refused", title="Forbidden")
        return Principal("none", Role.WRITE)

    def _authenticate(
        self, tokens: TokenFile, request: Request, headers: Headers
    ) -> Principal | Response:
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() != "bearer" or not credentials.strip():
                return _unauthorized("The Authorization header must be: Bearer TOKEN")
            token = tokens.lookup(credentials.strip())
            if token is None:
                return _unauthorized("The bearer token is not valid", invalid=True)
            return Principal("bearer", token.role)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            session = verify(tokens, cookie)
            if session is not None:
                return Principal("cookie", session.token.role, session.csrf)
        return _unauthorized(
            "Authentication required: send Authorization: Bearer TOKEN, or open the login URL "
            "that perdure server printed (/?token=TOKEN)"
        )

    def _login(self, tokens: TokenFile, request: Request, path: str) -> Response:
        token = tokens.lookup(request.query_params["token"])
        if token is None:
            return _unauthorized("The login token is not valid", invalid=True)
        cookie, csrf = issue(token, self.session_max_age)
        root = request.scope.get("root_path", "")
        kept = [(k, v) for k, v in parse_qsl(request.url.query) if k != "token"]
        target = root + ("/" if path == "/login" else path)
        if kept:
            target += "?" + urlencode(kept)
        response = RedirectResponse(target, status_code=303)
        # The CSRF value is not a secret from the page itself: the UI's script reads it.
        for name, value, httponly in ((SESSION_COOKIE, cookie, True), (CSRF_COOKIE, csrf, False)):
            response.set_cookie(
                name,
                value,
                max_age=int(self.session_max_age),
                path=root or "/",
                samesite="strict",
                secure=request.url.scheme == "https",
                httponly=httponly,
            )
        return response


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def principal_of(request: Request) -> Principal:
    """The principal :class:`AuthMiddleware` put on the request."""
    found = request.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(found, Principal):
        raise RuntimeError("perdure.server: a route ran without the auth middleware")
    return found
