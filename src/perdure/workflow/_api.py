"""The functions workflow code calls. Each finds the running workflow and delegates to it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as _random
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from perdure._common import identifiers as ids
from perdure.activity._context import with_details
from perdure.common._enums import WorkflowIDReusePolicy
from perdure.common._priority import Priority, priority_dict
from perdure.common._retry import RetryPolicy
from perdure.common._search_attributes import SearchAttributeUpdate, TypedSearchAttributes
from perdure.common._search_attributes import encode_pairs as encode_search_pairs
from perdure.common._search_attributes import encode_value as encode_search_attribute
from perdure.workflow._context import current, in_workflow
from perdure.workflow._definition import WorkflowDefinition, handler_name
from perdure.workflow._info import (
    ChildWorkflowCancellationType,
    ChildWorkflowHandle,
    ExternalWorkflowHandle,
    Info,
    ParentClosePolicy,
)
from perdure.workflow._interceptor import ContinueAsNewInput, StartChildWorkflowInput


class _ArgUnset:
    def __repr__(self) -> str:
        return "<no argument>"


_ARG_UNSET: Any = _ArgUnset()


def _seconds(value: timedelta | float | None, what: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return seconds


def _duration(value: timedelta | float | None, what: str) -> timedelta | None:
    """A timeout given as a timedelta or seconds, checked, as a timedelta."""
    seconds = _seconds(value, what)
    return None if seconds is None else timedelta(seconds=seconds)


def _normal_priority(priority: Priority | None) -> Priority | None:
    """A ``priority=`` argument, checked, as it will be stored (None when it sets nothing)."""
    stored = priority_dict(priority)
    return None if stored is None else Priority.from_dict(stored)


def info() -> Info:
    """About the running workflow: ids, type, task queue, attempt, start time, history size."""
    return current().info()


def now() -> datetime:
    """The current time, replay-safe: the time of the current workflow task (UTC)."""
    return datetime.fromtimestamp(current().now(), UTC)


def time() -> float:
    """:func:`now` as seconds since the epoch."""
    return current().now()


def time_ns() -> int:
    """:func:`now` as nanoseconds since the epoch."""
    return int(current().now() * 1_000_000_000)


def random() -> _random.Random:
    """A random generator seeded per workflow run: the same values on every replay."""
    return current().random()


def uuid4() -> uuid.UUID:
    """A random UUID that is the same on every replay."""
    return uuid.UUID(int=current().random().getrandbits(128), version=4)


async def sleep(duration: timedelta | float) -> None:
    """Wait durably: a timer recorded in history that survives restarts.

    ``asyncio.sleep`` in workflow code does the same.
    """
    await asyncio.sleep(_seconds(duration, "sleep duration") or 0)


async def wait_condition(
    fn: Callable[[], bool], *, timeout: timedelta | float | None = None
) -> None:
    """Wait until ``fn()`` is true; it is checked after every change to the workflow's state.

    Raises:
        asyncio.TimeoutError: ``timeout`` passed first (the timer is durable).
    """
    future = current().wait_condition(fn)
    seconds = _seconds(timeout, "timeout")
    if seconds is None:
        await future
    else:
        await asyncio.wait_for(future, seconds)


def set_signal_handler(
    signal: str | Callable[..., Any], handler: Callable[..., Any] | None
) -> None:
    """Register (or remove, with ``None``) a signal handler at run time; signals that arrived
    before it was registered are delivered to it at once, in order."""
    current().set_signal_handler(handler_name(signal, "signal"), handler)


def set_query_handler(query: str | Callable[..., Any], handler: Callable[..., Any] | None) -> None:
    """Register (or remove, with ``None``) a query handler at run time."""
    current().set_query_handler(handler_name(query, "query"), handler)


def continue_as_new(
    arg: Any = _ARG_UNSET,
    *,
    args: Sequence[Any] = (),
    workflow: Callable[..., Any] | str | None = None,
    task_queue: str | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    memo: dict[str, Any] | None = None,
) -> NoReturn:
    """End this run and start a new one of the same workflow id with a fresh history.

    The new run gets these arguments (and by default the same type, task queue and memo);
    ``info().continued_run_id`` names this run. Use it when
    ``info().is_continue_as_new_suggested()`` says the history has grown large.

    Raises:
        ContinueAsNewError: always; let it propagate out of the run method.
    """
    ctx = current()  # only inside a workflow
    if arg is not _ARG_UNSET:
        if args:
            raise ValueError("Give either arg or args, not both")
        args = (arg,)
    workflow_type: str | None
    if workflow is None or isinstance(workflow, str):
        workflow_type = workflow
    else:
        workflow_type = WorkflowDefinition.from_run_fn(workflow).name
    if workflow_type is not None:
        workflow_type = ids.check_workflow_type(workflow_type)
    task_queue = ids.check_optional_task_queue(task_queue)
    run_seconds = _seconds(run_timeout, "run_timeout")
    task_seconds = _seconds(task_timeout, "task_timeout")
    ctx.continue_as_new(
        ContinueAsNewInput(
            workflow=workflow_type,
            args=list(args),
            task_queue=task_queue,
            run_timeout=None if run_seconds is None else timedelta(seconds=run_seconds),
            task_timeout=None if task_seconds is None else timedelta(seconds=task_seconds),
            memo=memo,
            headers={},
        )
    )
    # The outbound interceptors end in raising ContinueAsNewError; one that returned
    # instead must not let the run go on as if nothing happened.
    raise RuntimeError("A workflow outbound interceptor's continue_as_new returned")


async def start_child_workflow(
    workflow: Callable[..., Any] | str,
    arg: Any = _ARG_UNSET,
    *,
    args: Sequence[Any] = (),
    id: str | None = None,
    task_queue: str | None = None,
    result_type: Any = None,
    cancellation_type: ChildWorkflowCancellationType = (
        ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
    ),
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    retry_policy: RetryPolicy | None = None,
    memo: dict[str, Any] | None = None,
    search_attributes: TypedSearchAttributes | None = None,
    priority: Priority | None = None,
) -> ChildWorkflowHandle[Any]:
    """Start a child workflow and return its handle once it has started.

    The child is started in the same transaction that records this decision. When this
    workflow closes, ``parent_close_policy`` says what happens to a child still running
    (terminated by default). Its id defaults to a replay-safe random UUID.

    Raises:
        WorkflowAlreadyStartedError: a workflow with that id is running.
    """
    if isinstance(workflow, str):
        workflow_type = workflow
    else:
        defn = WorkflowDefinition.from_run_fn(workflow)
        workflow_type = defn.name
        if result_type is None:
            result_type = defn.ret_type
    workflow_type = ids.check_workflow_type(workflow_type)
    if arg is not _ARG_UNSET:
        if args:
            raise ValueError("Give either arg or args, not both")
        args = (arg,)
    call = StartChildWorkflowInput(
        workflow=workflow_type,
        args=list(args),
        id=str(uuid4()) if id is None or id == "" else ids.check_workflow_id(id),
        task_queue=ids.check_optional_task_queue(task_queue),
        cancellation_type=ChildWorkflowCancellationType(int(cancellation_type)),
        parent_close_policy=ParentClosePolicy(int(parent_close_policy)),
        execution_timeout=_duration(execution_timeout, "execution_timeout"),
        run_timeout=_duration(run_timeout, "run_timeout"),
        task_timeout=_duration(task_timeout, "task_timeout"),
        id_reuse_policy=WorkflowIDReusePolicy(int(id_reuse_policy)),
        retry_policy=retry_policy,
        memo=memo,
        search_attributes=encode_search_pairs(search_attributes) if search_attributes else None,
        headers={},
        ret_type=result_type,
        priority=_normal_priority(priority),
    )
    handle: ChildWorkflowHandle[Any] = await current().start_child_workflow(call)
    return handle


async def execute_child_workflow(
    workflow: Callable[..., Any] | str,
    arg: Any = _ARG_UNSET,
    *,
    args: Sequence[Any] = (),
    id: str | None = None,
    task_queue: str | None = None,
    result_type: Any = None,
    cancellation_type: ChildWorkflowCancellationType = (
        ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
    ),
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    retry_policy: RetryPolicy | None = None,
    memo: dict[str, Any] | None = None,
    search_attributes: TypedSearchAttributes | None = None,
    priority: Priority | None = None,
) -> Any:
    """Start a child workflow and wait for its result.

    Raises:
        ChildWorkflowError: the child failed, was cancelled, terminated or timed out;
            ``.cause`` says which.
    """
    handle = await start_child_workflow(
        workflow,
        arg,
        args=args,
        id=id,
        task_queue=task_queue,
        result_type=result_type,
        cancellation_type=cancellation_type,
        parent_close_policy=parent_close_policy,
        execution_timeout=execution_timeout,
        run_timeout=run_timeout,
        task_timeout=task_timeout,
        id_reuse_policy=id_reuse_policy,
        retry_policy=retry_policy,
        memo=memo,
        search_attributes=search_attributes,
        priority=priority,
    )
    return await handle


def get_external_workflow_handle(
    workflow_id: str, *, run_id: str | None = None
) -> ExternalWorkflowHandle:
    """A handle to another workflow, to signal it or request its cancellation."""
    workflow_id = ids.check_workflow_id(workflow_id, "workflow_id")
    return ExternalWorkflowHandle(workflow_id, ids.check_run_id(run_id), current())


def get_external_workflow_handle_for(
    workflow: Callable[..., Any], workflow_id: str, *, run_id: str | None = None
) -> ExternalWorkflowHandle:
    """:func:`get_external_workflow_handle`, named after the workflow's run method."""
    return get_external_workflow_handle(workflow_id, run_id=run_id)


def all_handlers_finished() -> bool:
    """Whether every signal and update handler has finished (wait for this before returning
    from the run method, so no handler is cut off: ``await
    workflow.wait_condition(workflow.all_handlers_finished)``)."""
    return current().all_handlers_finished()


def patched(patch_id: str) -> bool:
    """Whether to run the new code of a change: True for runs that reach this point for the
    first time, False when replaying a run that went past it before the change.

    Example::

        if workflow.patched("send-receipt"):
            await workflow.execute_activity(send_receipt, ...)
    """
    return current().patched(patch_id)


def deprecate_patch(patch_id: str) -> None:
    """Mark a patch whose old branch is gone: every run still open has passed it. Keep the
    call until no open run predates the patch, then remove it too."""
    current().patched(patch_id, deprecated=True)


def memo() -> dict[str, Any]:
    """The workflow's memo (set at start, changed by :func:`upsert_memo`)."""
    return current().memo()


def memo_value(key: str, default: Any = _ARG_UNSET, *, type_hint: Any = None) -> Any:
    """One memo value, as ``type_hint`` when given.

    Raises:
        KeyError: no such key and no default.
    """
    found, value = current().memo_value(key, type_hint)
    if found:
        return value
    if default is _ARG_UNSET:
        raise KeyError(f"Memo has no key {key!r}")
    return default


def upsert_memo(updates: dict[str, Any]) -> None:
    """Set memo keys (a ``None`` value removes the key); recorded in history and visible
    through ``describe()``."""
    current().upsert_memo(updates)


def upsert_search_attributes(updates: Sequence[SearchAttributeUpdate[Any]]) -> None:
    """Set or remove search attributes (``key.value_set(v)`` / ``key.value_unset()``); recorded
    in history and queryable with ``client.list_workflows``."""
    encoded = {
        u.key.name: (None if u.value is None else encode_search_attribute(u.key, u.value))
        for u in updates
    }
    current().upsert_search_attributes(encoded)


class unsafe:
    """Escape hatches for code that knows what it does."""

    @staticmethod
    def is_replaying() -> bool:
        """Whether the code is being replayed from history (side effects would repeat)."""
        return current().is_replaying()

    @staticmethod
    def in_workflow() -> bool:
        """Whether the caller runs inside workflow code."""
        return in_workflow()

    @staticmethod
    @contextlib.contextmanager
    def imports_passed_through() -> Iterator[None]:
        """Temporal's way to import modules (activities, models) into its workflow sandbox
        unchanged. perdure runs workflow code without an import sandbox (its determinism
        guard watches calls, not imports), so every import is already passed through: this
        is here so Temporal's samples run as they are."""
        yield

    @staticmethod
    @contextlib.contextmanager
    def sandbox_unrestricted() -> Iterator[None]:
        """Temporal's way to lift its sandbox's restrictions for a block. perdure has no
        sandbox to lift (see :meth:`imports_passed_through`); its determinism guard still
        watches the block, as it watches all workflow code."""
        yield


class _WorkflowLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """``workflow.logger``: silent during replay, and tags records with the workflow's ids, as
    Temporal's does: ``workflow_id``, ``run_id``, ``workflow_type``, ``namespace``,
    ``task_queue`` and ``attempt`` as fields of the record (and all of them in the dict
    ``temporal_workflow``), and appended to the message."""

    def isEnabledFor(self, level: int) -> bool:
        if in_workflow() and current().is_replaying():
            return False
        enabled: bool = self.logger.isEnabledFor(level)
        return enabled

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        if in_workflow():
            i = current().info()
            details: dict[str, Any] = {
                "attempt": i.attempt,
                "namespace": i.namespace,
                "run_id": i.run_id,
                "task_queue": i.task_queue,
                "workflow_id": i.workflow_id,
                "workflow_type": i.workflow_type,
            }
            msg, kwargs = with_details(msg, args, kwargs, details, "temporal_workflow")
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1  # the caller's line, not ours
        self.logger.log(level, msg, *args, **kwargs)


logger = _WorkflowLogger(logging.getLogger("perdure.workflow"), {})
