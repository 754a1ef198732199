from __future__ import annotations

import enum


class WorkflowExecutionStatus(enum.IntEnum):
    """Where a workflow execution stands (Temporal's values)."""

    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    CANCELED = 4
    TERMINATED = 5
    CONTINUED_AS_NEW = 6
    TIMED_OUT = 7
