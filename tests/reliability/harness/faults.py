"""A seeded fault-injecting wrapper around a store (Temporal's persistence fault injection).

Faults are injected at the store's public methods, the seam every worker and client calls
through, never inside the engine:

* ``before``: the call raises ``DatabaseUnavailableError`` without reaching the database
  (a timeout or a lost connection before anything was sent);
* ``after``: the call runs and commits, *then* raises (Temporal's ``ExecuteAndTimeout``: the
  reply was lost), so the caller cannot know that it happened;
* ``busy``: raises SQLite's "database is locked" as the SQLite store reports it;
* ``latency``: the call is delayed by up to ``max_latency`` seconds, then runs.

The plan is seeded: the same seed and the same sequence of calls give the same faults.

``callers`` narrows a plan to the calls made from some modules: the suite-wide run
(``install_everywhere``, ``pytest --store-faults``) fails only the calls the engine's
workers make (``perdure.worker``), which the engine must absorb, never a call a test or a
client makes (whose error is the caller's to see) nor the store's calls to itself.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import random
import sqlite3
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from perdure._errors import DatabaseUnavailableError, PerdureError

# The store methods that change state (the ones whose faults matter most), and some reads.
WRITES = (
    "start_workflow",
    "signal",
    "request_cancel",
    "claim_workflow_tasks",
    "complete_workflow_task",
    "fail_workflow_task",
    "claim_activity_tasks",
    "complete_activity",
    "fail_activity",
    "heartbeat_activity",
    "fire_due",
    "expire_leases",
)
READS = ("get_history", "describe")
KINDS = ("before", "after", "busy", "latency")


class InjectedFault(DatabaseUnavailableError):
    """A fault the harness injected (the engine sees a DatabaseUnavailableError)."""


@dataclass
class FaultPlan:
    """Which calls fail, how often and how.

    Args:
        seed: the seed of the decisions.
        rate: the chance of a fault on each call of ``methods``.
        kinds: the kinds of fault, chosen among uniformly.
        methods: the store methods to wrap.
        limit: at most this many faults in all (None: no limit).
        max_latency: the longest ``latency`` delay, in seconds.
    """

    seed: int
    rate: float
    kinds: tuple[str, ...] = ("before", "after", "busy")
    methods: tuple[str, ...] = WRITES + READS
    limit: int | None = None
    max_latency: float = 0.05
    # Only calls made from modules whose name starts with one of these (None: every call).
    callers: tuple[str, ...] | None = None
    # ... and not on behalf of these (a module up the caller's chain: the test kit running a
    # worker's sweep within a test's call, say).
    not_for: tuple[str, ...] = ()
    # Per method, kinds never injected there (e.g. no lost reply on a claim).
    spare: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Kinds never injected into one call, given its arguments (None: none spared).
    spare_call: Callable[[str, tuple[Any, ...], dict[str, Any]], tuple[str, ...]] | None = None
    # Written before each recorded fault (the suite-wide run: the test's node id).
    label: str = ""
    # A file each injected fault appends a line to ("method kind"), for the figures of a run
    # whose faults were injected in worker processes.
    record: str | None = None
    # Kinds injected once each into the first calls they may go to, before chance decides
    # anything: a test that checks it met each kind cannot then fail by its seed's luck.
    first: tuple[str, ...] = ()
    injected: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    calls: collections.Counter[str] = field(default_factory=collections.Counter)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {KINDS}")
        self._random = random.Random(self.seed)

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def decide(self, method: str, spare: tuple[str, ...] = ()) -> str | None:
        self.calls[method] += 1
        if self.limit is not None and self.total >= self.limit:
            return None
        spare = spare + self.spare.get(method, ())
        due = [k for k in self.first if k not in spare and not self._met(k)]
        if due:
            kind = due[0]
        else:
            if self._random.random() >= self.rate:
                return None
            kinds = [k for k in self.kinds if k not in spare]
            if not kinds:
                return None
            kind = self._random.choice(kinds)
        self.injected[(method, kind)] += 1
        if self.record is not None:
            with open(self.record, "a", encoding="utf-8") as f:
                f.write(f"{self.label} {method} {kind}\n".lstrip())
        return kind

    def _met(self, kind: str) -> bool:
        return any(k == kind for _, k in self.injected)

    @staticmethod
    def parse(text: str, *, methods: Iterable[str] = WRITES + READS) -> FaultPlan:
        """``SEED:RATE[:KIND,KIND...[:RECORD_FILE]]``, as worker processes take it on their
        command line."""
        parts = text.split(":", 3)
        kinds = tuple(parts[2].split(",")) if len(parts) > 2 and parts[2] else KINDS[:3]
        record = parts[3] if len(parts) > 3 else None
        return FaultPlan(int(parts[0]), float(parts[1]), kinds, tuple(methods), record=record)


def inject(store: Any, plan: FaultPlan, methods: Iterable[str] | None = None) -> Any:
    """Wrap ``methods`` (default ``plan.methods``) of this store instance (the object
    workers and clients built on it share) so that they fail as the plan decides. Returns
    the store."""
    for name in plan.methods if methods is None else methods:
        original = getattr(store, name)
        setattr(store, name, _wrapped(name, original, plan))
    return store


def _called_from(frame: Any, plan: FaultPlan) -> bool:
    """Whether the call was made from ``plan.callers`` (by the caller's module), and not on
    behalf of ``plan.not_for`` (by any frame of the caller's chain: for a coroutine, the
    coroutines awaiting it, up to its task)."""
    if not frame.f_globals.get("__name__", "").startswith(plan.callers or ()):
        return False
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(plan.not_for):
            return False
        frame = frame.f_back
    return True


def _wrapped(name: str, original: Callable[..., Any], plan: FaultPlan) -> Callable[..., Any]:
    # A plain function returning the call's coroutine, so that the caller (the frame that
    # called the method, not the one that happens to await it) is known.
    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        if plan.callers is not None and not _called_from(sys._getframe(1), plan):
            return original(*args, **kwargs)
        return faulty(*args, **kwargs)

    async def faulty(*args: Any, **kwargs: Any) -> Any:
        kind = plan.decide(name, plan.spare_call(name, args, kwargs) if plan.spare_call else ())
        if kind == "before":
            raise InjectedFault(f"injected: {name} timed out before reaching the database")
        if kind == "busy":
            locked = sqlite3.OperationalError("database is locked")
            raise PerdureError(f"SQLite transaction failed: {locked} (injected)", cause=locked)
        if kind == "latency":
            await asyncio.sleep(plan._random.random() * plan.max_latency)
        result = await original(*args, **kwargs)
        if kind == "after":
            raise InjectedFault(f"injected: {name} committed, then its reply was lost")
        return result

    return call
