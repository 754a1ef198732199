from __future__ import annotations

import enum


class WorkflowIDReusePolicy(enum.IntEnum):
    """Whether a new run may use the id of a closed one."""

    ALLOW_DUPLICATE = 1
    ALLOW_DUPLICATE_FAILED_ONLY = 2
    REJECT_DUPLICATE = 3
    TERMINATE_IF_RUNNING = 4


class WorkflowIDConflictPolicy(enum.IntEnum):
    """What to do when a run with the id is still open."""

    FAIL = 1
    USE_EXISTING = 2
    TERMINATE_EXISTING = 3
