"""A loopback TCP proxy with toxics, between workers and PostgreSQL (toxiproxy's job; it is
not in Debian, and its PyPI package is only a client).

It runs on an event loop of its own, in a thread, so a test or a benchmark controls it from
any thread. Toxics, applied to every connection, both directions:

* ``latency(seconds, jitter)``: each chunk is delayed;
* ``bandwidth(bytes_per_second)``: each connection's bytes flow at most that fast, each
  direction;
* ``hold()``: bytes are kept, in order, until ``heal()`` delivers them (a partition that
  heals: what was sent during it arrives late, the way a slow network delivers it);
* ``blackhole()``: bytes are dropped (a half-open connection) until ``heal()``;
* ``reset()``: every open connection is closed with a TCP reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from typing import Any


class Proxy:
    def __init__(self, target_host: str, target_port: int, *, seed: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.mode = "pass"
        self.latency_s = 0.0
        self.jitter_s = 0.0
        self.bytes_per_second = 0.0
        self.connections = 0
        self.resets = 0
        self._random = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._healed = asyncio.Event()

    # -- control (any thread) ------------------------------------------------------------------
    def start(self) -> Proxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def url(self, database_url: str) -> str:
        """``database_url`` with its host and port replaced by the proxy's."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(database_url)
        user = f"{parts.username}@" if parts.username else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    def latency(self, seconds: float, jitter: float = 0.0) -> None:
        self._call(self._set, "latency", seconds, jitter)

    def bandwidth(self, bytes_per_second: float) -> None:
        self._call(self._set, "bandwidth", 0.0, 0.0, bytes_per_second)

    def hold(self) -> None:
        self._call(self._set, "hold", 0.0, 0.0)

    def blackhole(self) -> None:
        self._call(self._set, "blackhole", 0.0, 0.0)

    def heal(self) -> None:
        self._call(self._set, "pass", 0.0, 0.0)

    def reset(self) -> None:
        self._call(self._reset_all)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _call(self, fn: Any, *args: Any) -> None:
        async def run() -> None:
            fn(*args)

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # -- the proxy (its own loop) ------------------------------------------------------------
    def _set(self, mode: str, seconds: float, jitter: float, rate: float = 0.0) -> None:
        self.mode, self.latency_s, self.jitter_s = mode, seconds, jitter
        self.bytes_per_second = rate
        if mode in ("pass", "latency", "bandwidth"):
            self._healed.set()
        else:
            self._healed.clear()

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            self.resets += 1
        self._writers.clear()

    async def _serve(self) -> None:
        self._healed.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            if self.mode == "blackhole":
                continue
            if self.mode == "hold":
                await self._healed.wait()
            elif self.mode == "latency":
                await asyncio.sleep(self.latency_s + self._random.random() * self.jitter_s)
            elif self.mode == "bandwidth" and self.bytes_per_second > 0:
                await asyncio.sleep(len(data) / self.bytes_per_second)
            writer.write(data)
            await writer.drain()
