from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from perdure._common.payload import Payload
from perdure.common._priority import Priority
from perdure.common._search_attributes import TypedSearchAttributes, decode_pairs
from perdure.workflow._definition import handler_name

T = TypeVar("T")


class ActivityCancellationType(enum.IntEnum):
    """What cancelling an activity from workflow code waits for."""

    TRY_CANCEL = 0
    """Request cancellation and raise ``CancelledError`` in the workflow at once."""
    WAIT_CANCELLATION_COMPLETED = 1
    """Request cancellation and wait until the activity has finished (or reported it)."""
    ABANDON = 2
    """Do not request cancellation; the activity runs on, its result ignored."""


class ParentClosePolicy(enum.IntEnum):
    """What happens to a child when its parent closes."""

    TERMINATE = 1
    ABANDON = 2
    REQUEST_CANCEL = 3


class ChildWorkflowCancellationType(enum.IntEnum):
    """What cancelling a child workflow from its parent waits for."""

    ABANDON = 0
    TRY_CANCEL = 1
    WAIT_CANCELLATION_COMPLETED = 2
    WAIT_CANCELLATION_REQUESTED = 3


@dataclass(frozen=True)
class ParentInfo:
    """Who started this workflow as a child."""

    namespace: str
    workflow_id: str
    run_id: str


def duration(seconds: float | None) -> timedelta | None:
    """A recorded timeout (seconds, or None for none) as Info gives it."""
    return timedelta(seconds=seconds) if seconds else None


@dataclass(frozen=True)
class Info:
    """About the running workflow; ``workflow.info()`` returns it."""

    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    namespace: str
    attempt: int
    start_time: datetime
    continued_run_id: str | None = None
    parent: ParentInfo | None = None
    run_timeout: timedelta | None = None
    """How long one run may take (None: no limit)."""
    execution_timeout: timedelta | None = None
    """How long the whole execution, its continued runs and retries included, may take."""
    task_timeout: timedelta = timedelta(seconds=10)
    """How long a worker has to run one workflow task before another may take it."""
    headers: Mapping[str, Payload] = field(default_factory=dict)
    """The headers the run was started with (what interceptors put on the start)."""
    priority: Priority = Priority.default
    """The priority the workflow was started with (its activities' and children's default)."""
    _history_length: Callable[[], int] = field(default=lambda: 0, repr=False, compare=False)
    _history_size: Callable[[], int] = field(default=lambda: 0, repr=False, compare=False)
    _continue_as_new_suggested: Callable[[], bool] = field(
        default=lambda: False, repr=False, compare=False
    )
    _search_attributes: Callable[[], dict[str, Any]] = field(
        default=dict, repr=False, compare=False
    )

    @property
    def typed_search_attributes(self) -> TypedSearchAttributes:
        """The workflow's search attributes now (as started, with its upserts)."""
        return decode_pairs(self._search_attributes())

    def get_current_history_length(self) -> int:
        """Events in this run's history so far, counting the current workflow task."""
        return self._history_length()

    def get_current_history_size(self) -> int:
        """Bytes of this run's history so far."""
        return self._history_size()

    def is_continue_as_new_suggested(self) -> bool:
        """True once the history passes 4,096 events or 4 MiB: time to continue as new.

        Replay sees the answer the first run saw (the history records it)."""
        return self._continue_as_new_suggested()


class _CancelHooked(asyncio.Task[T], Generic[T]):
    """A task whose ``cancel()`` is the workflow's own: it requests the activity's or child's
    cancellation at once (recorded as a command) and settles the handle as its cancellation
    type says, even before the task has started running."""

    _cancel_hook: Callable[[], bool] | None = None

    def cancel(self, msg: Any = None) -> bool:
        hook = self._cancel_hook
        if hook is not None and not self.done():
            return hook()
        return super().cancel(msg)


class ActivityHandle(_CancelHooked[T], Generic[T]):
    """A started activity: await it for the result, ``cancel()`` it to request cancellation."""


class ChildWorkflowHandle(_CancelHooked[T], Generic[T]):
    """A started child workflow: await it for its result, ``signal()`` it, ``cancel()`` it
    (which requests the child's cancellation per its cancellation type)."""

    id: str = ""
    first_execution_run_id: str = ""
    _signaller: Callable[[str, list[Any]], Awaitable[None]] | None = None

    async def signal(self, signal: Any, arg: Any = None, *, args: Sequence[Any] = ()) -> None:
        """Send the child a signal (recorded in both histories)."""
        if self._signaller is None:
            raise RuntimeError("This child workflow handle cannot signal")
        await self._signaller(*_signal_call(signal, arg, args))


class ExternalWorkflowHandle:
    """Another workflow, reached from workflow code: signal it or request its cancellation."""

    def __init__(self, id: str, run_id: str | None, ctx: Any) -> None:
        self.id = id
        self.run_id = run_id
        self._ctx = ctx

    async def signal(self, signal: Any, arg: Any = None, *, args: Sequence[Any] = ()) -> None:
        """Send it a signal.

        Raises:
            ApplicationError: no open workflow with that id (type
                ``ExternalWorkflowExecutionNotFound``).
        """
        await self._ctx.signal_external(self.id, self.run_id, *_signal_call(signal, arg, args))

    async def cancel(self) -> None:
        """Request its cancellation."""
        await self._ctx.cancel_external(self.id, self.run_id)


def _signal_call(signal: Any, arg: Any, args: Sequence[Any]) -> tuple[str, list[Any]]:
    """A signal's registered name and its argument list, from what the caller gave."""
    return handler_name(signal, "signal"), [arg] if arg is not None and not args else list(args)
