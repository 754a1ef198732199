"""Wake-ups between the processes that share one SQLite file: a Unix datagram socket each.

PostgreSQL carries a commit's wake-ups to other processes with NOTIFY. A SQLite file has no
server, so every process that opens one binds a datagram socket beside it, in
``app.db-wake/<pid>-<random>.sock`` (a path too long for a socket address is reached through
``/proc/self/fd``). After each commit the store sends its wake-ups (the items NOTIFY carries,
plus a timer due within a second) to every other socket there, without blocking; the
receiver fires them in its own notifier.

Peers are found by listing the directory on opening and at most once a second while sending;
an opening process says hello, so the others know it at once. A socket nobody listens on (its
process was killed) is unlinked by the first sender to get ``ECONNREFUSED``. A peer whose
queue is full is owed "everything": once it has room, one datagram makes it look at all.

Polling stays as the fallback. Task pollers keep their interval (a delayed task becomes
claimable by time alone, which no commit announces); waiters on a run's close, which always
comes with a commit, look only every ``FALLBACK_POLL_INTERVAL`` while the channel is open.
Without one (no ``AF_UNIX``, or a directory that cannot be made or written: a debug log says
so) both poll as before. In-memory and time-skipping stores have no peers and open none.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import secrets
import socket
import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from perdure._store._effects import Effects

log = logging.getLogger("perdure.store")

# How often result waiters look for runs closed by other processes while the channel is
# open: only what it missed (a peer that could not be reached) waits this long.
FALLBACK_POLL_INTERVAL = 1.0
# How often the directory is listed again while sending (a hello may have been dropped).
RESCAN_INTERVAL = 1.0
# The longest socket path: sockaddr_un holds 108 bytes on Linux, 104 on macOS and the BSDs.
_MAX_PATH = 100
_HELLO, _EVERYTHING = b"+", b"*"
# macOS caps a local datagram at 2 KB by default; Linux takes far more in one.
_DATAGRAM = 2000 if sys.platform == "darwin" else 60_000
_MAX_DATAGRAMS = 16  # more in one commit: send "everything" instead
# A timer service reads the database this often anyway (worker/_timers.py): only sooner counts.
_SOON = 1.0
_NAME = re.compile(r"\d+-[0-9a-f]+\.sock")

# What a peer's datagrams become: the wake-up items, or None for "anything may have changed".
Receiver = Callable[[list[Any] | None], None]


def wake_dir(db_path: str) -> str:
    """The directory of the sockets of the processes that share ``db_path``."""
    return os.path.realpath(db_path) + "-wake"


def wake_items(fx: Effects) -> list[list[Any]]:
    """A committed change's wake-ups for other processes (the items of a NOTIFY payload)."""
    items: list[list[Any]] = [["queue", ns, q, int(kind)] for ns, q, kind in fx.queues]
    items += [["closed", run_id] for run_id in fx.closed]
    items += [["query", query_id] for query_id in fx.queries]
    items += [list(key) for key in fx.keys]
    items += [["activity_cancel", run_id, seq] for run_id, seq in fx.activity_cancels]
    if fx.wake_at is not None and fx.wake_at < time.time() + _SOON:
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
            sock = fd = None
            try:
                os.makedirs(directory, exist_ok=True)
                at = directory
                if len(os.fsencode(directory)) + 25 > _MAX_PATH:  # no room for "<pid>-<hex>.sock"
                    if not os.path.isdir("/proc/self/fd"):
                        raise OSError(f"{directory!r} is too long for a socket address")
                    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
                    at = f"/proc/self/fd/{fd}"  # the same directory, by a short path (Linux)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.setblocking(False)
                name = f"{os.getpid()}-{secrets.token_hex(4)}.sock"
                sock.bind(os.path.join(at, name))
                place = _Place(at, directory, fd)
            except OSError as exc:
                if sock is not None:
                    sock.close()
                if fd is not None:
                    os.close(fd)
                if isinstance(exc, FileNotFoundError):
                    continue
                log.debug("No wake-up channel beside %s (%s): polling instead", db_path, exc)
                return None
            try:
                return cls(loop, place, name, sock, receive)
            except NotImplementedError:  # a loop that cannot watch sockets (Windows' proactor)
                _release(sock, name, place)
                return None
        return None

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        place: _Place,
        name: str,
        sock: socket.socket,
        receive: Receiver,
    ) -> None:
        self._loop = loop
        self._dir = place.at
        self._real_dir = place.directory
        self._name = name
        self._sock = sock
        self._receive = receive
        self._peers: dict[str, str] = {}  # name -> path
        self._owed: set[str] = set()  # peers owed "everything"
        self._retry: asyncio.TimerHandle | None = None
        self._retry_delay = 0.002
        self._rescan_at = 0.0
        loop.add_reader(sock.fileno(), self._on_readable)
        self._finalizer = weakref.finalize(self, _release, sock, name, place)
        self._scan(time.monotonic())
        for peer in list(self._peers):
            self._send(peer, _HELLO)

    @property
    def path(self) -> str:
        return os.path.join(self._real_dir, self._name)

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
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE and data != _EVERYTHING:  # a huge id: say less
                return self._send(peer, _EVERYTHING)
            self._forget(peer)  # gone (closed), or not ours to write to
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
        self._retry_delay = min(self._retry_delay * 2, 0.1) if self._owed else 0.002
        if self._owed:
            self._retry = self._loop.call_later(self._retry_delay, self._pay)

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
            everything = everything or data == _EVERYTHING
            if data in (_HELLO, _EVERYTHING):
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


@dataclass(frozen=True)
class _Place:
    """The sockets' directory, and the path that reaches it (``/proc/self/fd/<fd>``)."""

    at: str
    directory: str
    fd: int | None


def _release(sock: socket.socket, name: str, place: _Place) -> None:
    sock.close()
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(place.at, name))
        os.rmdir(place.directory)  # fails while other processes' sockets are in it
    if place.fd is not None:
        os.close(place.fd)
