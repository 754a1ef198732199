"""Values shared by workflows, activities and clients: retry policies and id policies."""

from perdure._errors import RetryState, TimeoutType
from perdure.common._enums import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from perdure.common._retry import RetryPolicy

__all__ = [
    "RetryPolicy",
    "RetryState",
    "TimeoutType",
    "WorkflowIDConflictPolicy",
    "WorkflowIDReusePolicy",
]
