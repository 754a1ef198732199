"""Running the app under uvicorn, as ``perdure server`` does: one process, the client and the
server on one event loop, a clean stop on SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from perdure.client import Client
from perdure.server._app import create_app

# Seconds open requests (long polls) get to finish once a stop is asked for.
GRACEFUL_SHUTDOWN = 5


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def base_url(host: str, port: int) -> str:
    """The URL to open for a server listening on ``host``: a wildcard address is reached
    through loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


@dataclass(frozen=True)
class ServeOptions:
    db: str
    namespace: str
    host: str
    port: int
    token_file: Path | None
    workflows: Sequence[type]
    log_level: str
    public_metrics: bool = False


class _RedactTokens(logging.Filter):
    """Keep login tokens out of the access log (``/?token=...``)."""

    _TOKEN = re.compile(r"([?&]token=)[^&\s]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._TOKEN.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True


class _Server(uvicorn.Server):
    """uvicorn, minus its own signal handling (``serve`` installs the loop's), telling when
    it is listening."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (``port`` 0: a free one)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.set_inheritable(True)
    return sock


async def serve(options: ServeOptions, on_ready: Callable[[str], None]) -> None:
    """Serve the API until SIGTERM or SIGINT; ``on_ready(url)`` once it listens.

    Raises:
        OSError: the address cannot be bound.
    """
    client = await Client.connect(options.db, namespace=options.namespace)
    try:
        app = create_app(
            client,
            token_file=options.token_file,
            insecure_no_auth=options.token_file is None,
            workflows=options.workflows,
            public_metrics=options.public_metrics,
        )
        sock = bind(options.host, options.port)
        url = base_url(options.host, sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_level=options.log_level.lower(),
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
            server_header=False,
        )
        logging.getLogger("uvicorn.access").addFilter(_RedactTokens())
        server = _Server(config, lambda: on_ready(url))
        loop = asyncio.get_running_loop()

        def stop(*_: Any) -> None:
            server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        try:
            await server.serve(sockets=[sock])
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            sock.close()
    finally:
        await client.close()
