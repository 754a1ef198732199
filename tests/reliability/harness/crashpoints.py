"""Named crash points: ``PERDURE_CRASH_AT=<point>[:<n>]`` makes a worker process
``os._exit(137)`` at the n-th time it reaches that point (DBOS's ``DIE_ON_PURPOSE``).

The points are the worker's crash hook's (``Worker._set_crash_hook``, the seam the test kit's
``CrashPoint`` uses): the engine calls the hook at each point and knows nothing of the
environment variable. Before dying, the process appends the point's name to the file
``PERDURE_CRASH_HITS`` names, so a test can assert every point was really reached: a renamed
point cannot silently stop being tested.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

CRASH_AT = "PERDURE_CRASH_AT"
CRASH_HITS = "PERDURE_CRASH_HITS"
EXIT_CODE = 137
POINTS = ("workflow_task_completed", "before_activity_completes", "after_activity_completes")


def hook_from_environment() -> Callable[[str, Any, Any], Awaitable[None]] | None:
    """The crash hook ``PERDURE_CRASH_AT`` asks for, or None when it is unset."""
    spec = os.environ.get(CRASH_AT)
    if not spec:
        return None
    point, _, count = spec.partition(":")
    if point not in POINTS:
        raise ValueError(f"{CRASH_AT}={spec!r}: unknown point {point!r}; known: {POINTS}")
    target = int(count or 1)
    hits = 0

    async def hook(name: str, subject: Any, task: Any) -> None:
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

    return hook


def hits(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().split()
    except FileNotFoundError:
        return []
