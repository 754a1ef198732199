"""What every route shares: the server's state on the app, JSON responses, page tokens, and
the errors of values the data converter cannot take."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.responses import Response

from perdure.client import Client
from perdure.server._problems import BadValueError, dump


@dataclass(frozen=True)
class ServerState:
    """The app's client, and the workflow classes ``perdure server MODULE`` loaded (kept for
    features that replay a history against the code)."""

    client: Client
    workflows: Sequence[type]
    # A perdure.contrib.prometheus.PrometheusMetrics for GET /metrics (None: not installed).
    metrics: Any = None


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.perdure
    return state


class JSON(Response):
    """A JSON response, written by orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dump(content)


def encode_page_token(token: bytes | None) -> str | None:
    """A client's page token as the API hands it out: base64url text, no padding."""
    if token is None:
        return None
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode()


def decode_page_token(text: str | None) -> bytes | None:
    """The bytes of a page token the API handed out.

    Raises:
        ValueError: not such a token.
    """
    if not text:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(
            "next_page_token is not a token this API handed out: pass the next_page_token of "
            "the previous page as it was"
        ) from None


@contextmanager
def user_values() -> Iterator[None]:
    """Report the converter's ``TypeError`` for a request's values as the request's error."""
    try:
        yield
    except TypeError as exc:
        raise BadValueError(exc) from exc
