"""Named crash points: ``PERDURE_CRASH_AT=<point>[:<n>]`` makes a harness process (a worker,
a signal sender) ``os._exit(137)`` at the n-th time it reaches that point (DBOS's
``DIE_ON_PURPOSE``).

Two kinds of points, two hooks the engine offers and this module installs: the worker's
(``Worker._set_crash_hook``, the seam the test kit's ``CrashPoint`` uses), between a step's
commit and what the worker does next; and the store's (``perdure._store._crash``), inside a
write transaction after its writes and before its commit, so the transaction dies
uncommitted. The engine calls the hooks and knows nothing of the environment variable.
Before dying, the process appends the point's name to the file ``PERDURE_CRASH_HITS`` names,
so a test can assert every point was really reached: a renamed point cannot silently stop
being tested.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from perdure._store import _crash as store_crash

CRASH_AT = "PERDURE_CRASH_AT"
CRASH_HITS = "PERDURE_CRASH_HITS"
EXIT_CODE = 137
WORKER_POINTS = (
    "workflow_task_completed",
    "before_activity_completes",
    "after_activity_completes",
)
STORE_POINTS = store_crash.POINTS
# Store points with a test file of their own (test_parent_close_crashes.py: it needs a parent
# closing with children open), left out of test_store_crash_points.py's run of the others.
TESTED_APART = ("after_parent_close_policy",)
POINTS = WORKER_POINTS + STORE_POINTS


def hook_from_environment() -> Callable[[str, Any, Any], Awaitable[None]] | None:
    """The worker's crash hook ``PERDURE_CRASH_AT`` asks for, or None when it is unset or
    names a store point (whose hook this installs in the store)."""
    spec = os.environ.get(CRASH_AT)
    if not spec:
        return None
    point, _, count = spec.partition(":")
    if point not in POINTS:
        raise ValueError(f"{CRASH_AT}={spec!r}: unknown point {point!r}; known: {POINTS}")
    target = int(count or 1)
    hits = 0

    def reached(name: str) -> None:
        nonlocal hits
        if name != point:
            return
        hits += 1
        if hits < target:
            return
        record = os.environ.get(CRASH_HITS)
        if record:
            fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, f"{point}\n".encode())
            os.fsync(fd)
            os.close(fd)
        os._exit(EXIT_CODE)

    if point in STORE_POINTS:
        store_crash.install(reached)
        return None

    async def hook(name: str, subject: Any, task: Any) -> None:
        reached(name)

    return hook


def hits(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().split()
    except FileNotFoundError:
        return []
