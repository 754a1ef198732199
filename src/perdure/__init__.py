"""perdure: durable workflows for Python, with Temporal's programming model and nothing to
operate. ``pip install perdure``, point it at a SQLite file, and your workflows survive
crashes."""

from perdure import activity, workflow
from perdure._errors import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    NondeterminismError,
    PerdureError,
    TerminatedError,
    TimeoutError,
)
from perdure.client import (
    Client,
    WorkflowAlreadyStartedError,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from perdure.common import RetryPolicy
from perdure.worker import Replayer, Worker

__version__ = "0.1.0"

__all__ = [
    "ActivityError",
    "ApplicationError",
    "CancelledError",
    "ChildWorkflowError",
    "Client",
    "FailureError",
    "NondeterminismError",
    "PerdureError",
    "Replayer",
    "RetryPolicy",
    "TerminatedError",
    "TimeoutError",
    "Worker",
    "WorkflowAlreadyStartedError",
    "WorkflowExecutionStatus",
    "WorkflowFailureError",
    "WorkflowHandle",
    "activity",
    "workflow",
]
