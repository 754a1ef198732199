"""The UI's session: a cookie that stands for a token, and the CSRF value bound to it.

A browser logs in once with the login URL (``/?token=TOKEN``); the server answers with a
session cookie and sends it back to the same page without the token in the URL. The cookie
is ``HttpOnly`` (scripts cannot read it) and ``SameSite=Strict`` (no other site's page can
make the browser send it), and it is signed with the token's own digest: it names the token by
a fingerprint, carries an expiry, and stops working when the token is removed from the token
file. Nothing is kept in the server's memory, so sessions survive a restart.

A state-changing request made with the cookie must also carry the header ``X-Perdure-CSRF``
equal to the session's CSRF value, which the UI reads from the ``perdure_csrf`` cookie (or
from ``GET /api/v1/session``): another site can make a browser send a cookie, not a header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from perdure.server._tokens import Token, TokenFile

SESSION_COOKIE = "perdure_session"
CSRF_COOKIE = "perdure_csrf"
CSRF_HEADER = "x-perdure-csrf"


@dataclass(frozen=True)
class Session:
    """A valid session: its token, and the CSRF value state-changing requests must carry."""

    token: Token
    csrf: str


def _sign(key: bytes, purpose: str, body: str) -> str:
    mac = hmac.new(key, f"{purpose}|{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def issue(token: Token, max_age: float, now: float | None = None) -> tuple[str, str]:
    """A new session for ``token``: the cookie's value and its CSRF value."""
    expires = int((now if now is not None else time.time()) + max_age)
    body = f"{token.fingerprint}.{expires}"
    return f"{body}.{_sign(token.digest, 'session', body)}", _sign(token.digest, "csrf", body)


def verify(tokens: TokenFile, cookie: str, now: float | None = None) -> Session | None:
    """The session a cookie stands for, or None if it is forged, expired or its token gone."""
    fingerprint, _, rest = cookie.partition(".")
    expires, _, signature = rest.partition(".")
    if not expires.isdigit() or int(expires) < (now if now is not None else time.time()):
        return None
    token = tokens.by_fingerprint(fingerprint)
    if token is None:
        return None
    body = f"{fingerprint}.{expires}"
    if not hmac.compare_digest(signature, _sign(token.digest, "session", body)):
        return None
    return Session(token, _sign(token.digest, "csrf", body))
