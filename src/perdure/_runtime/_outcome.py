"""What an exception raised out of workflow code becomes: the command that closes the run
(failed, cancelled, continued as new) or the failure of its workflow task (the run stays
open and the task is tried again)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from perdure._common.commands import CancelWorkflow, Command, ContinueAsNew, FailWorkflow
from perdure._common.payload import Payload
from perdure._errors import (
    ActivityError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    NondeterminismError,
    WorkflowAlreadyStartedError,
)
from perdure.converter import PayloadConverter
from perdure.converter._failure import FailureConverter
from perdure.workflow._errors import ContinueAsNewError


def fails_workflow(exc: BaseException, failure_types: Sequence[type[BaseException]]) -> bool:
    """Whether ``exc``, raised out of the workflow's code, fails the workflow (a
    ``FailureError`` or a listed failure type) rather than only its workflow task."""
    if isinstance(exc, NondeterminismError | ContinueAsNewError):
        return False
    return isinstance(exc, FailureError | WorkflowAlreadyStartedError) or bool(
        failure_types and isinstance(exc, tuple(failure_types))
    )


def closing_outcome(
    exc: BaseException,
    *,
    cancel_requested: bool,
    failure_types: Sequence[type[BaseException]],
    payloads: PayloadConverter,
    failures: FailureConverter,
    workflow_type: str,
    task_queue: str,
    memo: Mapping[str, Payload],
) -> Command | BaseException:
    """The command ``exc`` closes the run with, or the exception that fails the task.

    Raises:
        Exception: continue-as-new's arguments or the failure's details do not convert.
    """
    if isinstance(exc, ContinueAsNewError):
        return ContinueAsNew(
            workflow_type=exc.workflow_type or workflow_type,
            task_queue=exc.task_queue or task_queue,
            input=payloads.to_payloads(list(exc.args_)),
            run_timeout=exc.run_timeout,
            task_timeout=exc.task_timeout,
            memo=(
                {k: payloads.to_payload(v) for k, v in exc.memo.items()}
                if exc.memo is not None
                else dict(memo)
            ),
            header=exc.header,
        )
    if cancel_requested and is_cancellation(exc):
        return CancelWorkflow()
    if isinstance(exc, NondeterminismError):
        return exc
    if fails_workflow(exc, failure_types):
        return FailWorkflow(failures.to_failure(exc, payloads))
    if isinstance(exc, asyncio.CancelledError):
        return RuntimeError(
            "Workflow code was cancelled without a cancellation request (a task "
            "cancelled the workflow's own run)"
        )
    return exc


def to_payload(converter: PayloadConverter, value: Any, what: str) -> Payload:
    try:
        return converter.to_payload(value)
    except Exception as exc:
        raise TypeError(f"{what} cannot be converted to a payload: {exc}") from exc


def is_cancellation(exc: BaseException) -> bool:
    if isinstance(exc, asyncio.CancelledError | CancelledError):
        return True
    if isinstance(exc, ActivityError | ChildWorkflowError):
        return isinstance(exc.cause, CancelledError | asyncio.CancelledError)
    return False
