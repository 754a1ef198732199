"""How the authoring API finds the running workflow: through its event loop.

The runtime's event loop carries a ``WorkflowContext``; the functions of ``perdure.workflow``
look it up on every call and hold no state of their own.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from perdure._errors import PerdureError
from perdure.converter import PayloadConverter
from perdure.workflow._info import ActivityHandle, Info

if TYPE_CHECKING:
    from perdure.common._retry import RetryPolicy
    from perdure.workflow._interceptor import ContinueAsNewInput, StartChildWorkflowInput


class WorkflowContext(Protocol):
    """What a running workflow offers the authoring API (implemented by the runtime)."""

    def info(self) -> Info: ...

    def now(self) -> float: ...

    def random(self) -> random.Random: ...

    def is_replaying(self) -> bool: ...

    def payload_converter(self) -> PayloadConverter: ...

    def start_activity(
        self,
        activity_type: str,
        args: Sequence[Any],
        *,
        task_queue: str | None,
        schedule_to_close_timeout: float | None,
        schedule_to_start_timeout: float | None,
        start_to_close_timeout: float | None,
        heartbeat_timeout: float | None,
        retry_policy: RetryPolicy | None,
        cancellation_type: int,
        activity_id: str | None,
        result_type: Any,
        priority: dict[str, Any] | None = None,
        concurrency_key: str | None = None,
    ) -> ActivityHandle[Any]: ...

    def start_local_activity(
        self, activity_type: str, args: Sequence[Any], **options: Any
    ) -> ActivityHandle[Any]: ...

    def wait_condition(self, fn: Callable[[], bool]) -> asyncio.Future[None]: ...

    def set_signal_handler(self, name: str, handler: Callable[..., Any] | None) -> None: ...

    def set_query_handler(self, name: str, handler: Callable[..., Any] | None) -> None: ...

    def get_signal_handler(self, name: str) -> Callable[..., Any] | None: ...

    def get_query_handler(self, name: str) -> Callable[..., Any] | None: ...

    def patched(self, patch_id: str, *, deprecated: bool = False) -> bool: ...

    def all_handlers_finished(self) -> bool: ...

    def fails_workflow(self, exc: BaseException) -> bool: ...

    def start_child_workflow(self, call: StartChildWorkflowInput) -> Awaitable[Any]: ...

    def signal_external(
        self, workflow_id: str, run_id: str | None, name: str, args: Sequence[Any]
    ) -> Awaitable[None]: ...

    def cancel_external(self, workflow_id: str, run_id: str | None) -> Awaitable[None]: ...

    def continue_as_new(self, call: ContinueAsNewInput) -> None: ...

    def memo(self) -> dict[str, Any]: ...

    def memo_value(self, key: str, type_hint: Any) -> tuple[bool, Any]: ...

    def upsert_memo(self, updates: dict[str, Any]) -> None: ...

    def search_attributes(self) -> dict[str, Any]: ...

    def upsert_search_attributes(self, updates: dict[str, Any]) -> None: ...


class NotInWorkflowError(PerdureError, RuntimeError):
    """A ``perdure.workflow`` function was called outside workflow code."""


def current() -> WorkflowContext:
    """The running workflow's context, or a clear error outside workflow code."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    ctx = getattr(loop, "perdure_context", None)
    if ctx is None:
        raise NotInWorkflowError(
            "Not in workflow code: this function only works inside a @workflow.defn class "
            "run by a perdure Worker"
        )
    context: WorkflowContext = ctx
    return context


def in_workflow() -> bool:
    """Whether the caller runs inside workflow code."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    return getattr(loop, "perdure_context", None) is not None
