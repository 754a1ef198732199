"""What dynamic handlers and handlers registered at run time use: the workflow's payload
converter (to read ``RawValue`` arguments), and the handlers registered under a name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perdure.converter import PayloadConverter
from perdure.workflow._context import current


def get_signal_handler(name: str) -> Callable[..., Any] | None:
    """The handler of signal ``name``: a ``@workflow.signal`` method (bound) or one
    registered with :func:`set_signal_handler`; ``None`` if there is none (a dynamic handler
    is not returned)."""
    return current().get_signal_handler(name)


def get_query_handler(name: str) -> Callable[..., Any] | None:
    """The handler of query ``name``: a ``@workflow.query`` method (bound) or one registered
    with :func:`set_query_handler`; ``None`` if there is none (a dynamic or built-in handler
    is not returned)."""
    return current().get_query_handler(name)


def payload_converter() -> PayloadConverter:
    """The payload converter of the running workflow's worker: what dynamic workflows and
    handlers read their ``RawValue`` arguments with.

    Example::

        @workflow.signal(dynamic=True)
        def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
            self.seen.append((name, workflow.payload_converter().from_payload(args[0].payload)))
    """
    return current().payload_converter()
