"""perdure's error tree: every error perdure raises on purpose is a ``PerdureError``.

::

    PerdureError
    ├── FailureError                      a failure that travels through history
    │   ├── ApplicationError              raised by user code on purpose
    │   │   ├── CompensationError         a saga's compensations failed (perdure.patterns)
    │   │   └── PayloadConverterError     (also a TypeError) an activity's value no payload
    │   │                                 can hold; non-retryable
    │   ├── ActivityError                 an activity failed; .cause says why
    │   ├── ChildWorkflowError            a child workflow failed; .cause says why
    │   ├── CancelledError                cancellation, as a failure (not asyncio's)
    │   ├── TerminatedError               the workflow was terminated
    │   ├── TimeoutError                  .type is a TimeoutType
    │   └── ServerError                   the engine failed the operation
    ├── WorkflowFailureError              client side: the workflow did not complete; .cause
    ├── WorkflowAlreadyStartedError       client side: a run of that id is open
    ├── WorkflowNotFoundError             client side: no such workflow execution
    ├── WorkflowQueryFailedError          client side: the query failed or was unknown
    ├── WorkflowUpdateFailedError         client side: the update failed
    ├── RPCTimeoutOrCancelledError        client side: no worker answered in time
    ├── NondeterminismError               replayed code issued different commands
    ├── RestrictedWorkflowAccessError     workflow code called a non-deterministic API
    ├── DeterminismLintError              the linter found such code (perdure.lint); .findings
    ├── PayloadSizeError                  a payload is larger than the limit
    ├── InvalidArgumentError              (also a TypeError and ValueError) an id or name
    │                                     perdure cannot take: not a str, empty, too long, NUL
    ├── SearchAttributeTypeError          a search attribute set with the wrong type
    ├── InvalidURLError                   a database URL perdure cannot use
    ├── SchemaError                       the database's perdure tables are not as expected
    │   └── SchemaVersionError            the database was written by a newer perdure
    ├── DatabaseUnavailableError          the database cannot be reached (down, cut off)
    └── ClientClosedError                 the client (and its database connection) is closed

Cancellation inside workflows and activities stays an ``asyncio.CancelledError`` (a
``BaseException``), so ``except Exception`` never swallows it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any


class PerdureError(Exception):
    """Base of every error perdure raises on purpose.

    Attributes:
        cause: the error that led to this one, if any (also set as ``__cause__``).
    """

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause

    def __str__(self) -> str:
        return self.message


class RetryState(enum.IntEnum):
    """Why an activity or workflow stopped retrying (Temporal's names)."""

    UNSPECIFIED = 0
    IN_PROGRESS = 1
    NON_RETRYABLE_FAILURE = 2
    TIMEOUT = 3
    MAXIMUM_ATTEMPTS_REACHED = 4
    RETRY_POLICY_NOT_SET = 5
    INTERNAL_SERVER_ERROR = 6
    CANCEL_REQUESTED = 7


class TimeoutType(enum.IntEnum):
    """Which timeout fired."""

    UNSPECIFIED = 0
    START_TO_CLOSE = 1
    SCHEDULE_TO_START = 2
    SCHEDULE_TO_CLOSE = 3
    HEARTBEAT = 4


class FailureError(PerdureError):
    """A failure that can be recorded in history and travel between workflows and activities.

    Attributes:
        failure: the serialized form, once it has been through history (else ``None``).
    """

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message, cause=cause)
        self.failure: dict[str, Any] | None = None


class ApplicationErrorCategory(enum.IntEnum):
    """How severe an ``ApplicationError`` is, for logs and metrics (Temporal's values).

    ``BENIGN`` marks an expected failure (a poll that finds nothing yet): the worker logs the
    failed activity attempt at DEBUG instead of WARNING. It changes nothing else: the attempt
    is retried, and the category travels with the failure through history.
    """

    UNSPECIFIED = 0
    BENIGN = 1


class ApplicationError(FailureError):
    """An error raised on purpose by user code.

    Raised from an activity, it fails that attempt (retried unless ``non_retryable``).
    Raised from workflow code, it fails the workflow, where a plain exception would only
    fail the workflow task.

    Args:
        message: what went wrong.
        *details: values carried with the error (converted like any payload).
        type: a name for the kind of error; ``RetryPolicy.non_retryable_error_types`` matches
            it. Defaults to the class name.
        non_retryable: never retry this failure, whatever the retry policy says.
        next_retry_delay: wait this long before the next attempt instead of the policy's
            backoff.
        category: ``ApplicationErrorCategory.BENIGN`` for an expected failure, logged at
            DEBUG by the worker.

    Example::

        raise ApplicationError("card declined", type="CardDeclined", non_retryable=True)
    """

    def __init__(
        self,
        message: str,
        *details: Any,
        type: str | None = None,
        non_retryable: bool = False,
        next_retry_delay: Any = None,
        category: ApplicationErrorCategory = ApplicationErrorCategory.UNSPECIFIED,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, cause=cause)
        self._details: tuple[Any, ...] = details
        self.type = type if type is not None else self.__class__.__name__
        self.non_retryable = non_retryable
        self.next_retry_delay = next_retry_delay
        self.category = category

    @property
    def details(self) -> Sequence[Any]:
        """The values given with the error (raw JSON values once decoded from history)."""
        return self._details


class ActivityError(FailureError):
    """An activity failed for good (retries exhausted, non-retryable, timed out, cancelled).

    ``.cause`` holds the reason: an ``ApplicationError``, ``TimeoutError`` or
    ``CancelledError``.
    """

    def __init__(
        self,
        message: str,
        *,
        scheduled_event_id: int = 0,
        started_event_id: int = 0,
        identity: str = "",
        activity_type: str = "",
        activity_id: str = "",
        retry_state: RetryState | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, cause=cause)
        self.scheduled_event_id = scheduled_event_id
        self.started_event_id = started_event_id
        self.identity = identity
        self.activity_type = activity_type
        self.activity_id = activity_id
        self.retry_state = retry_state


class ChildWorkflowError(FailureError):
    """A child workflow did not complete; ``.cause`` says why."""

    def __init__(
        self,
        message: str,
        *,
        namespace: str = "default",
        workflow_id: str = "",
        run_id: str = "",
        workflow_type: str = "",
        retry_state: RetryState | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, cause=cause)
        self.namespace = namespace
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.workflow_type = workflow_type
        self.retry_state = retry_state


class CancelledError(FailureError):
    """Cancellation as a recorded failure (what a cancelled activity or workflow reports)."""

    def __init__(self, message: str = "Cancelled", *details: Any) -> None:
        super().__init__(message)
        self._details = details

    @property
    def details(self) -> Sequence[Any]:
        return self._details


class TerminatedError(FailureError):
    """The workflow was terminated."""


class TimeoutError(FailureError):
    """A timeout fired.

    Attributes:
        type: which timeout, a ``TimeoutType``.
        last_heartbeat_details: an activity's last heartbeat details, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        type: TimeoutType | None,
        last_heartbeat_details: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self.type = type
        self.last_heartbeat_details = last_heartbeat_details


class ServerError(FailureError):
    """The engine itself failed the operation (for example an unregistered activity type)."""

    def __init__(self, message: str, *, non_retryable: bool = False) -> None:
        super().__init__(message)
        self.non_retryable = non_retryable


class WorkflowFailureError(PerdureError):
    """The workflow did not complete successfully. ``.cause`` is the failure it ended with."""

    def __init__(self, *, cause: BaseException) -> None:
        super().__init__("Workflow execution failed", cause=cause)


class WorkflowAlreadyStartedError(PerdureError):
    """A run with this workflow id is already open (or the id reuse policy refuses it)."""

    def __init__(self, workflow_id: str, workflow_type: str, *, run_id: str | None = None) -> None:
        super().__init__(
            f"Workflow execution already started: id {workflow_id!r} (type {workflow_type}). "
            "Use another id, or get_workflow_handle() to reach the running one."
        )
        self.workflow_id = workflow_id
        self.workflow_type = workflow_type
        self.run_id = run_id


class WorkflowNotFoundError(PerdureError):
    """No workflow execution has that id (and run id)."""


class WorkflowQueryFailedError(PerdureError):
    """The query failed: unknown query name, the handler raised, or it was not answered."""


class WorkflowUpdateFailedError(PerdureError):
    """The update failed; ``.cause`` says why."""

    def __init__(self, *, cause: BaseException) -> None:
        super().__init__("Workflow update failed", cause=cause)


class RPCTimeoutOrCancelledError(PerdureError):
    """A call that needs a worker (a query) was not answered in time."""


class NondeterminismError(PerdureError):
    """Workflow code, replayed against its history, did something different from the first run.

    The message names the history event and the command that disagree. Fix the code (or wrap
    the change in ``workflow.patched``); the workflow stays open and its task is retried.
    """


class RestrictedWorkflowAccessError(NondeterminismError):
    """Workflow code called something that is not replay-safe (clock, randomness, I/O, threads).

    The message names the call and its replay-safe alternative.
    """


class PayloadSizeError(PerdureError):
    """A payload is larger than perdure stores (2 MiB by default)."""


class PayloadConverterError(ApplicationError, TypeError):
    """A value that cannot become a payload: an activity's result, its heartbeat details or
    its error's details (an object JSON cannot hold, ``float("nan")``).

    Non-retryable, since another attempt would produce the same value: the workflow sees an
    ``ActivityError`` whose cause is an ``ApplicationError`` of this type. It is also a
    ``TypeError``, as the converter's own error is.
    """

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message, non_retryable=True, cause=cause)


class InvalidArgumentError(PerdureError, TypeError, ValueError):
    """An identifier or name perdure cannot take: a workflow id, run id, task queue, type,
    activity id, signal, query or update name that is not a ``str``, is empty, is longer than
    1,000 characters, or holds a NUL character. The message names the argument.

    Raised at the call that passed it, before anything is stored. It is both a ``TypeError``
    and a ``ValueError``, so code that catches either (as for Python's own argument errors)
    catches it.
    """


class SearchAttributeTypeError(PerdureError, ValueError):
    """A search attribute was set with a type other than the one it is registered with."""


class InvalidURLError(PerdureError, ValueError):
    """The database URL is not one perdure can use; the message shows the accepted forms."""


class SchemaError(PerdureError):
    """The database's perdure tables are not what its schema version says (a table, a column
    or the version row is missing): the message names what is wrong and how to repair it."""


class SchemaVersionError(SchemaError):
    """The database was written by a newer perdure than this one; upgrade perdure."""


class DatabaseUnavailableError(PerdureError):
    """The database cannot be reached: the server is down or restarting, or the network is
    cut. PostgreSQL operations are tried again for a while (60 s) before this is raised;
    workers keep trying, with backoff, until the database answers again."""


class ClientClosedError(PerdureError):
    """The client, and the database connection it shares with its workers, was closed
    (``Client.close()``, or the test environment's ``shutdown()``). Shut workers down before
    closing their client; connect a new client to go on."""
