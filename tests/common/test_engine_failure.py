"""The engine's own failures (timeouts, unregistered types, resets, updates a closed run left)
are written in one shape, which the failure converter reads back as the right exception."""

from __future__ import annotations

import json

from perdure._common.failure import EngineFailure
from perdure.converter import DataConverter, DefaultFailureConverter
from perdure.exceptions import ApplicationError, ServerError, TimeoutError, TimeoutType

PAYLOADS = DataConverter().payload_converter


def test_an_application_failure_is_written_as_history_has_always_stored_it() -> None:
    failure = EngineFailure("Workflow closed (COMPLETED)", "WorkflowClosed", non_retryable=True)
    # Stored JSON must not change byte for byte: the keys keep their order.
    assert json.dumps(failure.to_dict()) == (
        '{"message": "Workflow closed (COMPLETED)", "kind": "application", '
        '"type": "WorkflowClosed", "non_retryable": true, "details": [], "cause": null, '
        '"stack_trace": ""}'
    )
    error = DefaultFailureConverter().from_failure(failure.to_dict(), PAYLOADS)
    assert isinstance(error, ApplicationError)
    assert (error.message, error.type, error.non_retryable) == (
        "Workflow closed (COMPLETED)",
        "WorkflowClosed",
        True,
    )


def test_a_timeout_failure_carries_its_type_and_last_heartbeat() -> None:
    details = PAYLOADS.to_payloads(["halfway"])
    failure = EngineFailure(
        "activity HEARTBEAT timeout",
        "TimeoutError",
        kind="timeout",
        timeout_type=int(TimeoutType.HEARTBEAT),
        last_heartbeat_details=details,
    ).to_dict()
    assert list(failure) == [
        "message",
        "kind",
        "type",
        "timeout_type",
        "last_heartbeat_details",
        "non_retryable",
        "details",
        "cause",
        "stack_trace",
    ]
    error = DefaultFailureConverter().from_failure(failure, PAYLOADS)
    assert isinstance(error, TimeoutError)
    assert error.type == TimeoutType.HEARTBEAT
    assert list(error.last_heartbeat_details) == ["halfway"]


def test_a_server_failure_reads_back_as_a_server_error() -> None:
    failure = EngineFailure("not registered", "NotRegisteredError", kind="server")
    error = DefaultFailureConverter().from_failure(failure.to_dict(), PAYLOADS)
    assert isinstance(error, ServerError)
    assert str(error) == "not registered"
