"""Wake-ups between the processes that share one SQLite file: a Unix datagram socket each.

PostgreSQL carries a committed change's wake-ups to other processes with NOTIFY. A SQLite
file has no server to carry them, so every process that opens the file binds a datagram
socket in a directory beside it (``app.db-wake/<pid>-<random>.sock``, or, when that path
would pass the ~104 bytes a socket address holds, ``$TMPDIR/perdure-wake-<hash of the
file's real path>/``). After a commit that made work ready, closed runs, answered queries or
settled updates, the store sends those wake-ups (the items NOTIFY carries, plus the earliest
new timer) to every other socket there, without blocking; the receiver fires them in its
own notifier, as if the change had been committed in process.

Peers are found by listing the directory when the channel opens and at most once a second
while sending; a process that opens the file says hello to the others, so they know it at
once. A socket nobody listens on any more (its process was killed) is unlinked by the first
sender to get ``ECONNREFUSED`` from it. A peer whose receive queue is full is owed
"everything": once it has room it is sent one datagram that makes it look at all it polls.

Polling stays as the fallback: slower (``FALLBACK_POLL_INTERVAL``) while the channel is open,
the store's usual interval when it cannot be (no ``AF_UNIX``, or a directory that cannot be
created or written, said once in a debug log). An in-memory database and the time-skipping
test environment have no other processes to hear and open none.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from typing import Any

import orjson

from perdure._store._effects import Effects

log = logging.getLogger("perdure.store")

# How often pollers look for other processes' changes while the channel is open: only what
# the channel missed (a peer that could not be reached) waits this long.
FALLBACK_POLL_INTERVAL = 1.0
# How often the directory is listed again while sending (a hello may have been dropped).
RESCAN_INTERVAL = 1.0
# The longest socket path: sockaddr_un holds 108 bytes on Linux, 104 on macOS and the BSDs.
_MAX_PATH = 100
_HELLO = b"+"
_EVERYTHING = b"*"
# macOS caps a local datagram at 2 KB by default; Linux takes far more in one.
_DATAGRAM = 2000 if sys.platform == "darwin" else 60_000
_MAX_DATAGRAMS = 16  # more in one commit: send "everything" instead
_NAME = re.compile(r"\d+-[0-9a-f]+\.sock")

# What a peer's datagrams become: the wake-up items, or None for "anything may have changed".
Receiver = Callable[[list[Any] | None], None]


def wake_dir(db_path: str) -> str:
    """The directory of the sockets of the processes that share ``db_path``."""
    real = os.path.realpath(db_path)
    beside = real + "-wake"
    if len(os.fsencode(beside)) + 1 + 24 <= _MAX_PATH:  # room for "<pid>-<hex>.sock"
        return beside
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"perdure-wake-{digest}")


def wake_items(fx: Effects) -> list[list[Any]]:
    """A committed change's wake-ups for other processes (the items of a NOTIFY payload)."""
    items: list[list[Any]] = [["queue", ns, q, int(kind)] for ns, q, kind in fx.queues]
    items += [["closed", run_id] for run_id in fx.closed]
    items += [["query", query_id] for query_id in fx.queries]
    items += [list(key) for key in fx.keys]
    items += [["activity_cancel", run_id, seq] for run_id, seq in fx.activity_cancels]
    if items and fx.wake_at is not None:
        items.append(["wake_at", fx.wake_at])
    return items


def _pack(items: list[list[Any]]) -> list[bytes]:
    """The items as JSON arrays, each datagram at most ``_DATAGRAM`` bytes."""
    datagrams: list[bytes] = []
    chunk: list[bytes] = []
    size = 2
    for item in items:
        data = orjson.dumps(item)
        if chunk and size + len(data) + 1 > _DATAGRAM:
            datagrams.append(b"[" + b",".join(chunk) + b"]")
            chunk, size = [], 2
        chunk.append(data)
        size += len(data) + 1
    if chunk:
        datagrams.append(b"[" + b",".join(chunk) + b"]")
    return datagrams if len(datagrams) <= _MAX_DATAGRAMS else [_EVERYTHING]


class PeerChannel:
    """This process's socket beside a SQLite file, and the sockets of the others on it."""

    @classmethod
    def open(cls, db_path: str, receive: Receiver) -> PeerChannel | None:
        """Bind this process's socket and greet the others; None (and polling) when the
        platform or the file system does not allow it, or no event loop runs."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        if not hasattr(socket, "AF_UNIX"):
            return None
        directory = wake_dir(db_path)
        for _ in range(3):  # a closing peer may remove the directory as it empties
            sock = None
            try:
                os.makedirs(directory, exist_ok=True)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.setblocking(False)
                name = f"{os.getpid()}-{secrets.token_hex(4)}.sock"
                sock.bind(os.path.join(directory, name))
                return cls(loop, directory, name, sock, receive)
            except FileNotFoundError:
                if sock is not None:
                    sock.close()
            except OSError as exc:
                if sock is not None:
                    sock.close()
                log.debug(
                    "No wake-up channel beside %s (%s): changes of other processes are polled for",
                    db_path,
                    exc,
                )
                return None
        return None

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        directory: str,
        name: str,
        sock: socket.socket,
        receive: Receiver,
    ) -> None:
        self._loop = loop
        self._dir = directory
        self._name = name
        self._sock = sock
        self._receive = receive
        self._peers: dict[str, str] = {}  # name -> path
        self._owed: set[str] = set()  # peers owed "everything"
        self._retry: asyncio.TimerHandle | None = None
        self._retry_delay = 0.002
        self._rescan_at = 0.0
        path = os.path.join(directory, name)
        self._finalizer = weakref.finalize(self, _release, sock, path, directory)
        loop.add_reader(sock.fileno(), self._on_readable)
        self._scan(time.monotonic())
        for peer in list(self._peers):
            self._send(peer, _HELLO)

    @property
    def path(self) -> str:
        return os.path.join(self._dir, self._name)

    def peers(self) -> list[str]:
        """The other processes' sockets this one sends to (their file names)."""
        return sorted(self._peers)

    # -- sending -------------------------------------------------------------------------------
    def send(self, fx: Effects) -> None:
        """Tell every peer what a commit woke (called after each commit)."""
        now = time.monotonic()
        if now >= self._rescan_at:
            self._scan(now)
        if not self._peers:
            return
        items = wake_items(fx)
        if not items:
            return
        datagrams = _pack(items)
        for peer in list(self._peers):
            if peer in self._owed:
                continue  # "everything" is on its way to it
            for data in datagrams:
                if not self._send(peer, data):
                    break

    def _send(self, peer: str, data: bytes) -> bool:
        path = self._peers.get(peer)
        if path is None:
            return False
        try:
            self._sock.sendto(data, path)
            return True
        except BlockingIOError:  # its queue is full: it gets "everything" once it has room
            self._owe(peer)
        except ConnectionRefusedError:  # nobody listens: its process died without cleaning up
            self._forget(peer)
            with contextlib.suppress(OSError):
                os.unlink(path)
        except OSError:  # gone (closed), or not ours to write to
            self._forget(peer)
        return False

    def _forget(self, peer: str) -> None:
        self._peers.pop(peer, None)
        self._owed.discard(peer)

    def _owe(self, peer: str) -> None:
        self._owed.add(peer)
        if self._retry is None:
            self._retry = self._loop.call_later(self._retry_delay, self._pay)

    def _pay(self) -> None:
        self._retry = None
        owed, self._owed = self._owed, set()
        for peer in owed:
            self._send(peer, _EVERYTHING)  # owed again if still full
        if self._owed:
            self._retry_delay = min(self._retry_delay * 2, 0.1)
            self._retry = self._loop.call_later(self._retry_delay, self._pay)
        else:
            self._retry_delay = 0.002

    def _scan(self, now: float) -> None:
        self._rescan_at = now + RESCAN_INTERVAL
        try:
            names = os.listdir(self._dir)
        except OSError:
            return
        self._peers = {
            n: os.path.join(self._dir, n) for n in names if n != self._name and _NAME.fullmatch(n)
        }
        self._owed &= set(self._peers)

    # -- receiving -----------------------------------------------------------------------------
    def _on_readable(self) -> None:
        items: list[Any] = []
        everything = False
        for _ in range(256):  # then let the loop run; the rest is read on its next turn
            try:
                data, sender = self._sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return
            if isinstance(sender, str) and sender:
                peer = os.path.basename(sender)
                if peer not in self._peers and peer != self._name and _NAME.fullmatch(peer):
                    self._peers[peer] = os.path.join(self._dir, peer)
            if data == _HELLO:
                continue
            if data == _EVERYTHING:
                everything = True
                continue
            try:
                decoded = orjson.loads(data)
            except orjson.JSONDecodeError:
                log.warning("Ignoring a malformed perdure wake-up: %r", data[:200])
                continue
            if isinstance(decoded, list):
                items.extend(decoded)
        if everything:
            self._receive(None)
        elif items:
            self._receive(items)

    def close(self) -> None:
        """Stop listening, and remove this process's socket (and the directory, if empty)."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._finalizer()


def _release(sock: socket.socket, path: str, directory: str) -> None:
    sock.close()
    try:
        os.unlink(path)
        os.rmdir(directory)  # fails while other processes' sockets are in it
    except OSError:
        pass
