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


class ResetType(enum.IntEnum):
    """Which workflow task ``WorkflowHandle.reset`` goes back to, when no event id is given
    (Temporal CLI's ``--reset-type``)."""

    FIRST_WORKFLOW_TASK = 1
    """The run's first completed workflow task: the workflow starts over, keeping its input."""
    LAST_WORKFLOW_TASK = 2
    """The run's last completed workflow task (the one that failed the workflow, say)."""
    LAST_CONTINUED_AS_NEW = 3
    """The last workflow task of the run this one continued from (the task that continued
    as new, or the one that failed into a retry)."""
