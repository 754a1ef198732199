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


class PendingActivityState(enum.IntEnum):
    """Where an activity a workflow waits on stands (Temporal's values)."""

    UNSPECIFIED = 0
    SCHEDULED = 1
    """Waiting for a worker to take it (or, after a failed attempt, for its retry time)."""
    STARTED = 2
    """A worker runs it."""
    CANCEL_REQUESTED = 3
    """The workflow asked to cancel it; the worker running it has yet to stop."""
