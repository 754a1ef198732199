"""What a committed transaction should wake up: pollers, result waiters, running activities."""

from __future__ import annotations

from dataclasses import dataclass, field

from perdure._store._types import Execution, TaskKind


@dataclass(slots=True)
class Effects:
    """Collected during a transaction; acted on only after it commits."""

    queues: set[tuple[str, str, TaskKind]] = field(default_factory=set)
    # The runs closed, as the transaction left them (None: deleted too): a result awaited in
    # this process is handed its run without reading it again.
    closed: dict[str, Execution | None] = field(default_factory=dict)
    queries: set[int] = field(default_factory=set)
    activity_cancels: set[tuple[str, int]] = field(default_factory=set)
    changed: bool = False
    wake_at: float | None = None
    keys: set[tuple[str, ...]] = field(default_factory=set)

    def notify(self, *key: str) -> None:
        """Wake whoever listens for ``key`` once the change commits."""
        self.keys.add(key)
        self.changed = True

    def wake(self, when: float | None) -> None:
        """Something will be due at ``when`` (a timer, a deadline, a delayed task)."""
        if when is not None and (self.wake_at is None or when < self.wake_at):
            self.wake_at = when
        self.changed = True

    def task_ready(self, namespace: str, task_queue: str, kind: TaskKind) -> None:
        self.queues.add((namespace, task_queue, kind))
        self.changed = True

    def merge(self, other: Effects) -> None:
        self.queues |= other.queues
        self.closed |= other.closed
        self.queries |= other.queries
        self.keys |= other.keys
        self.activity_cancels |= other.activity_cancels
        self.changed = self.changed or other.changed
        if other.wake_at is not None:
            self.wake(other.wake_at)
