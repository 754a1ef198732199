"""Failures that travel through histories, with Temporal's names; the tree is drawn in
``perdure._errors``."""

from perdure._errors import (
    ActivityError,
    ApplicationError,
    ApplicationErrorCategory,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    InvalidURLError,
    PayloadSizeError,
    PerdureError,
    RetryState,
    SchemaError,
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
    "ApplicationErrorCategory",
    "CancelledError",
    "ChildWorkflowError",
    "FailureError",
    "InvalidURLError",
    "PayloadSizeError",
    "PerdureError",
    "RetryState",
    "SchemaError",
    "SchemaVersionError",
    "SearchAttributeTypeError",
    "ServerError",
    "TerminatedError",
    "TimeoutError",
    "TimeoutType",
]
