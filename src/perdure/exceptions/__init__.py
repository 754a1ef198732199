"""Failures that travel through histories, with Temporal's names; the tree is drawn in
``perdure._errors``."""

from perdure._errors import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    ClientClosedError,
    DatabaseUnavailableError,
    FailureError,
    InvalidURLError,
    PayloadSizeError,
    PerdureError,
    RetryState,
    SchemaVersionError,
    SearchAttributeTypeError,
    ServerError,
    TerminatedError,
    TimeoutError,
    TimeoutType,
)

__all__ = [
    "ActivityError",
    "ApplicationError",
    "CancelledError",
    "ChildWorkflowError",
    "ClientClosedError",
    "DatabaseUnavailableError",
    "FailureError",
    "InvalidURLError",
    "PayloadSizeError",
    "PerdureError",
    "RetryState",
    "SchemaVersionError",
    "SearchAttributeTypeError",
    "ServerError",
    "TerminatedError",
    "TimeoutError",
    "TimeoutType",
]
