"""In-process wake-ups: a committed change wakes the pollers and waiters it concerns.

Other processes see changes by polling (bounded by the poll interval) on SQLite, and by
LISTEN/NOTIFY on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable
from typing import Any


class Notifier:
    def __init__(self) -> None:
        self._events: dict[Hashable, asyncio.Event] = {}
        self._users: dict[Hashable, int] = {}
        self._wake_listeners: list[Callable[[float], None]] = []
        self._subscribers: dict[str, list[Callable[[Any], None]]] = {}

    def listen(self, key: Hashable) -> asyncio.Event:
        """The event set whenever ``key`` fires; call :meth:`forget` when done with it."""
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
        self._users[key] = self._users.get(key, 0) + 1
        return event

    def forget(self, key: Hashable) -> None:
        users = self._users.get(key, 0) - 1
        if users <= 0:
            self._users.pop(key, None)
            self._events.pop(key, None)
        else:
            self._users[key] = users

    def fire(self, keys: Iterable[Hashable]) -> None:
        for key in keys:
            event = self._events.get(key)
            if event is not None:
                event.set()

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
