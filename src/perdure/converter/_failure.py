from __future__ import annotations

import asyncio
import traceback
from datetime import timedelta
from typing import Any

from perdure._errors import (
    ActivityError,
    ApplicationError,
    ApplicationErrorCategory,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    RetryState,
    ServerError,
    TerminatedError,
    TimeoutError,
    TimeoutType,
)
from perdure.converter._payload_converter import PayloadConverter

# The message of a failure whose message and stack trace were moved into its
# ``encoded_attributes`` payload (Temporal's word for it).
ENCODED_MESSAGE = "Encoded failure"


class FailureConverter:
    """Turns exceptions into failure dicts (as stored in history) and back.

    A failure dict has ``message``, ``kind`` (application, activity, child_workflow,
    cancelled, terminated, timeout, server), ``type``, ``stack_trace``, ``non_retryable``,
    ``details`` (payloads), ``cause`` (a failure dict or ``None``) and kind-specific fields.

    Args:
        encode_common_attributes: move each failure's message and stack trace into an
            ``encoded_attributes`` payload, which the payload codec encodes like any other
            (the stored message reads ``"Encoded failure"``); :meth:`from_failure` puts them
            back. As Temporal's ``DefaultFailureConverter(encode_common_attributes=True)``.
    """

    def __init__(self, *, encode_common_attributes: bool = False) -> None:
        self.encode_common_attributes = encode_common_attributes

    def to_failure(self, exc: BaseException, converter: PayloadConverter) -> dict[str, Any]:
        failure = self._to_failure(exc, converter)
        if self.encode_common_attributes:
            failure = _encode_common_attributes(failure, converter)
        return failure

    def _to_failure(self, exc: BaseException, converter: PayloadConverter) -> dict[str, Any]:
        failure: dict[str, Any] = {
            "message": str(exc) if not isinstance(exc, FailureError) else exc.message,
            "type": type(exc).__name__,
            "stack_trace": "".join(traceback.format_exception(exc, chain=False)).strip()
            if exc.__traceback__
            else "",
            "non_retryable": False,
            "details": [],
            "cause": None,
        }
        if isinstance(exc, FailureError) and exc.failure is not None and exc.__traceback__ is None:
            return exc.failure
        if isinstance(exc, ApplicationError):
            failure["kind"] = "application"
            failure["type"] = exc.type
            failure["non_retryable"] = exc.non_retryable
            failure["details"] = converter.to_payloads(list(exc.details))
            delay = exc.next_retry_delay
            failure["next_retry_delay"] = (
                delay.total_seconds() if isinstance(delay, timedelta) else delay
            )
            if exc.category:
                failure["category"] = int(exc.category)
        elif isinstance(exc, ActivityError):
            failure.update(
                kind="activity",
                activity_type=exc.activity_type,
                activity_id=exc.activity_id,
                scheduled_event_id=exc.scheduled_event_id,
                retry_state=int(exc.retry_state or 0),
            )
        elif isinstance(exc, ChildWorkflowError):
            failure.update(
                kind="child_workflow",
                workflow_id=exc.workflow_id,
                run_id=exc.run_id,
                workflow_type=exc.workflow_type,
                retry_state=int(exc.retry_state or 0),
            )
        elif isinstance(exc, TimeoutError):
            failure.update(
                kind="timeout",
                timeout_type=int(exc.type or 0),
                last_heartbeat_details=converter.to_payloads(list(exc.last_heartbeat_details)),
            )
        elif isinstance(exc, CancelledError | asyncio.CancelledError):
            failure["kind"] = "cancelled"
            failure["message"] = str(exc) or "Cancelled"
            if isinstance(exc, CancelledError):
                failure["details"] = converter.to_payloads(list(exc.details))
        elif isinstance(exc, TerminatedError):
            failure["kind"] = "terminated"
        elif isinstance(exc, ServerError):
            failure["kind"] = "server"
            failure["non_retryable"] = exc.non_retryable
        else:
            failure["kind"] = "application"
        cause = exc.__cause__ if exc.__cause__ is not None else getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            failure["cause"] = self.to_failure(cause, converter)
        return failure

    def from_failure(self, failure: dict[str, Any], converter: PayloadConverter) -> FailureError:
        # Whatever this converter's setting: a failure written by one that encoded them reads.
        failure = _decode_common_attributes(failure, converter)
        cause = self.from_failure(failure["cause"], converter) if failure.get("cause") else None
        kind = failure.get("kind", "application")
        message = failure.get("message", "")
        exc: FailureError
        if kind == "activity":
            exc = ActivityError(
                message,
                activity_type=failure.get("activity_type", ""),
                activity_id=failure.get("activity_id", ""),
                scheduled_event_id=failure.get("scheduled_event_id", 0),
                retry_state=RetryState(failure.get("retry_state", 0)),
                cause=cause,
            )
        elif kind == "child_workflow":
            exc = ChildWorkflowError(
                message,
                workflow_id=failure.get("workflow_id", ""),
                run_id=failure.get("run_id", ""),
                workflow_type=failure.get("workflow_type", ""),
                retry_state=RetryState(failure.get("retry_state", 0)),
                cause=cause,
            )
        elif kind == "timeout":
            exc = TimeoutError(
                message,
                type=TimeoutType(failure.get("timeout_type", 0)),
                last_heartbeat_details=converter.from_payloads(
                    failure.get("last_heartbeat_details", [])
                ),
            )
        elif kind == "cancelled":
            exc = CancelledError(message, *converter.from_payloads(failure.get("details", [])))
        elif kind == "terminated":
            exc = TerminatedError(message)
        elif kind == "server":
            exc = ServerError(message, non_retryable=failure.get("non_retryable", False))
        else:
            delay = failure.get("next_retry_delay")
            exc = ApplicationError(
                message,
                *converter.from_payloads(failure.get("details", [])),
                type=failure.get("type"),
                non_retryable=failure.get("non_retryable", False),
                next_retry_delay=timedelta(seconds=delay) if delay is not None else None,
                category=_category(failure.get("category", 0)),
            )
        if cause is not None and exc.cause is None:
            exc.cause = cause
            exc.__cause__ = cause
        exc.failure = failure
        return exc


def _category(value: Any) -> ApplicationErrorCategory:
    """A recorded category; one this perdure does not know (written by a newer one) reads as
    ``UNSPECIFIED``."""
    try:
        return ApplicationErrorCategory(value)
    except ValueError:
        return ApplicationErrorCategory.UNSPECIFIED


class DefaultFailureConverter(FailureConverter):
    """Temporal's name for perdure's failure converter (the :class:`DataConverter` default)."""


class DefaultFailureConverterWithEncodedAttributes(DefaultFailureConverter):
    """The failure converter that moves failure messages and stack traces into a payload, so
    that the payload codec encrypts them too; Temporal's class of the same name.

    Example::

        DataConverter(
            payload_codec=AesGcmCodec(key),
            failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
        )
    """

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)


def _encode_common_attributes(
    failure: dict[str, Any], converter: PayloadConverter
) -> dict[str, Any]:
    """``failure`` (a copy) with its message and stack trace in ``encoded_attributes``."""
    if failure.get("message") == ENCODED_MESSAGE and "encoded_attributes" in failure:
        return failure  # encoded already (a failure read back from history, passed on)
    attributes = {
        "message": failure.get("message", ""),
        "stack_trace": failure.get("stack_trace", ""),
    }
    return {
        **failure,
        "message": ENCODED_MESSAGE,
        "stack_trace": "",
        "encoded_attributes": converter.to_payload(attributes),
    }


def _decode_common_attributes(
    failure: dict[str, Any], converter: PayloadConverter
) -> dict[str, Any]:
    """``failure`` (a copy, if it had them) with its message and stack trace read back from
    ``encoded_attributes`` (which the payload codec has decoded by now)."""
    encoded = failure.get("encoded_attributes")
    if encoded is None:
        return failure
    try:
        attributes = converter.from_payload(encoded)
    except Exception:  # not readable (its codec is not configured here): left as stored
        return failure
    if not isinstance(attributes, dict):
        return failure
    out = {k: v for k, v in failure.items() if k != "encoded_attributes"}
    if isinstance(attributes.get("message"), str):
        out["message"] = attributes["message"]
    if isinstance(attributes.get("stack_trace"), str):
        out["stack_trace"] = attributes["stack_trace"]
    return out
