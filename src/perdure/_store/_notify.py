"""In-process wake-ups: a committed change wakes the pollers and waiters it concerns.

Other processes hear of changes by LISTEN/NOTIFY on PostgreSQL and by the wake-up channel
(``_wake``) on SQLite, both decoded by :func:`fire_peer_items`; polling is the fallback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from perdure._store._types import TaskKind

log = logging.getLogger("perdure.store")


class Flag:
    """A cheap, resettable wake-up flag (``asyncio.Event`` without the tasks)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def add_waiter(self, future: asyncio.Future[None]) -> None:
        self._waiters.append(future)

    def remove_waiter(self, future: asyncio.Future[None]) -> None:
        if future in self._waiters:
            self._waiters.remove(future)

    async def wait(self) -> None:
        if self._set:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        await future


class Notifier:
    def __init__(self) -> None:
        self._events: dict[Hashable, Flag] = {}
        self._users: dict[Hashable, int] = {}
        self._wake_listeners: list[Callable[[float], None]] = []
        self._subscribers: dict[str, list[Callable[[Any], None]]] = {}

    def listen(self, key: Hashable) -> Flag:
        """The flag set whenever ``key`` fires; call :meth:`forget` when done with it."""
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = Flag()
        self._users[key] = self._users.get(key, 0) + 1
        return event

    def forget(self, key: Hashable) -> None:
        users = self._users.get(key, 0) - 1
        if users <= 0:
            self._users.pop(key, None)
            self._events.pop(key, None)
        else:
            self._users[key] = users

    def listened(self) -> set[Hashable]:
        """The keys someone listens to now (for task queues: the queues being polled)."""
        return set(self._events)

    def fire(self, keys: Iterable[Hashable]) -> None:
        for key in keys:
            event = self._events.get(key)
            if event is not None:
                event.set()

    def wake_all(self) -> None:
        """Wake every listener (the store is closing: let them look, and stop)."""
        self.fire(list(self._events))
        self.wake_at(float("-inf"))

    def on_wake_at(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Call ``listener(when)`` whenever a change makes something due at ``when``."""
        self._wake_listeners.append(listener)
        return lambda: self._wake_listeners.remove(listener)

    def wake_at(self, when: float) -> None:
        for listener in list(self._wake_listeners):
            listener(when)

    def subscribe(self, topic: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(item)`` for every item published on ``topic``; returns the undo."""
        self._subscribers.setdefault(topic, []).append(callback)
        return lambda: self._subscribers[topic].remove(callback)

    def publish(self, topic: str, item: Any) -> None:
        for callback in list(self._subscribers.get(topic, ())):
            callback(item)


def fire_peer_items(notifier: Notifier, items: list[Any]) -> list[str]:
    """Fire another process's wake-up items in ``notifier`` (``["queue", namespace, queue,
    kind]``, ``["activity_cancel", run_id, seq]``, ``["wake_at", when]``, or a notifier key
    such as ``["closed", run_id]``), and ``("changed",)``; returns the closed run ids."""
    keys: list[Hashable] = []
    closed: list[str] = []
    try:
        for item in items:
            if item[0] == "queue":
                keys.append(("queue", item[1], item[2], TaskKind(item[3])))
            elif item[0] == "activity_cancel":
                notifier.publish("activity_cancel", (item[1], item[2]))
            elif item[0] == "wake_at":
                notifier.wake_at(float(item[1]))
            else:
                keys.append(tuple(item))
                if item[0] == "closed":
                    closed.append(item[1])
    except Exception:  # another perdure version's message: polling will find the change
        log.warning("Ignoring a malformed perdure wake-up: %r", items)
    keys.append(("changed",))
    notifier.fire(keys)
    return closed
