from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from perdure._common.events import EventType
from perdure._common.identifiers import check_request_id, check_run_id, check_update_id
from perdure._errors import (
    CancelledError,
    InvalidArgumentError,
    TerminatedError,
    TimeoutError,
    WorkflowFailureError,
)
from perdure._store._types import Execution, ResetRequest
from perdure.client._connection import Connection
from perdure.client._description import (
    WorkflowExecutionDescription,
    WorkflowTaskFailureInfo,
)
from perdure.client._history import WorkflowHistory
from perdure.client._history_events import WorkflowHistoryEventAsyncIterator
from perdure.client._inputs import (
    CancelWorkflowInput,
    DescribeWorkflowInput,
    FetchWorkflowHistoryEventsInput,
    QueryWorkflowInput,
    SignalWorkflowInput,
    StartWorkflowUpdateInput,
    TerminateWorkflowInput,
)
from perdure.client._update import WorkflowUpdateHandle, WorkflowUpdateStage
from perdure.common._enums import ResetType
from perdure.converter._external import resolve_events
from perdure.workflow._definition import _arg_and_return_types, handler_name

ReturnType = TypeVar("ReturnType")

__all__ = [
    "HandleCalls",
    "WorkflowExecutionDescription",
    "WorkflowHandle",
    "WorkflowHistory",
    "WorkflowTaskFailureInfo",
]


class HandleCalls(Protocol):
    """The calls of the client's interceptor chain a handle makes (the chain's
    ``OutboundInterceptor`` has them all): a handle goes through the whole chain, as the
    client does, without knowing the client."""

    async def signal_workflow(self, input: SignalWorkflowInput) -> None: ...

    async def query_workflow(self, input: QueryWorkflowInput) -> Any: ...

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]: ...

    async def cancel_workflow(self, input: CancelWorkflowInput) -> None: ...

    async def terminate_workflow(self, input: TerminateWorkflowInput) -> None: ...

    async def describe_workflow(
        self, input: DescribeWorkflowInput
    ) -> WorkflowExecutionDescription: ...

    def fetch_workflow_history_events(
        self, input: FetchWorkflowHistoryEventsInput
    ) -> WorkflowHistoryEventAsyncIterator: ...


log = logging.getLogger("perdure.client")


def _utc(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _next_run_id(ex: Execution) -> str | None:
    """The run that took over from a closed run: the one a reset of it made (even after it
    closed), else the one it continued as new, retried or was reset into."""
    reset_to = (ex.reset_points or {}).get("to")
    if reset_to:
        return str(reset_to["new_run_id"])
    new_run_id = ((ex.close_event or {}).get("attributes") or {}).get("new_run_id")
    return str(new_run_id) if new_run_id else None


class WorkflowHandle(Generic[ReturnType]):
    """A workflow execution, reached by id (and optionally run id).

    Example::

        handle = await client.start_workflow(Order.run, order, id="order-1", task_queue="q")
        await handle.signal(Order.approve, "alice")
        print(await handle.result())
    """

    def __init__(
        self,
        connection: Connection,
        calls: HandleCalls,
        id: str,
        *,
        run_id: str | None = None,
        result_run_id: str | None = None,
        first_execution_run_id: str | None = None,
        result_type: Any = None,
    ) -> None:
        self._connection = connection
        self._calls = calls
        self.id = id
        self.run_id = run_id
        self.result_run_id = result_run_id
        self.first_execution_run_id = first_execution_run_id
        self._result_type = result_type

    async def _execution(self, run_id: str | None = None) -> Execution:
        c = self._connection
        return await c.execution(self.id, run_id or self.run_id)

    async def result(self, *, follow_runs: bool = True) -> ReturnType:
        """Wait for the workflow to close and return its result.

        Raises:
            WorkflowFailureError: it failed, was cancelled, terminated or timed out; ``.cause``
                says which.
        """
        c = self._connection
        run_id = self.result_run_id or self.run_id
        while True:
            if c.time_skipper is None:
                ex = await c.wait_closed(self.id, run_id)
            else:  # a test's virtual clock moves while this waits
                async with c.time_skipper.auto_skip():
                    ex = await c.wait_closed(self.id, run_id)
            event = ex.close_event or {}
            attrs = event.get("attributes", {})
            kind = event.get("event_type")
            # A run that continued as new, failed or timed out into a retry, or was reset has a
            # next run.
            next_run_id = _next_run_id(ex)
            if not follow_runs or not next_run_id:
                break
            run_id = next_run_id
        conv = c.data_converter
        if kind == EventType.WORKFLOW_EXECUTION_COMPLETED.value:
            values = await conv.decode([attrs["result"]], [self._result_type])
            result: ReturnType = values[0]
            return result
        if kind == EventType.WORKFLOW_EXECUTION_FAILED.value:
            failure = await c.decode_failure(attrs["failure"])
            cause: BaseException = conv.failure_converter.from_failure(
                failure, conv.payload_converter
            )
        elif kind == EventType.WORKFLOW_EXECUTION_CANCELED.value:
            details = await conv.decode(attrs.get("details", []))
            cause = CancelledError("Workflow cancelled", *details)
        elif kind == EventType.WORKFLOW_EXECUTION_TERMINATED.value:
            cause = TerminatedError(attrs.get("reason") or "Workflow terminated")
        elif kind == EventType.WORKFLOW_EXECUTION_TIMED_OUT.value:
            cause = TimeoutError(f"Workflow {attrs.get('timeout', 'run')} timeout", type=None)
        elif kind == EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW.value:
            cause = RuntimeError(
                f"Run {ex.run_id} continued as new as run {attrs.get('new_run_id')}; "
                "result(follow_runs=True) follows it"
            )
        else:
            cause = RuntimeError(f"Workflow closed with unexpected status {ex.status.name}")
        raise WorkflowFailureError(cause=cause)

    async def signal(
        self,
        signal: str | Callable[..., Any],
        arg: Any = None,
        *,
        args: Sequence[Any] = (),
        request_id: str | None = None,
    ) -> None:
        """Send a signal: recorded in history and delivered to the handler exactly once.

        ``request_id`` is its idempotency key (Temporal's name): send a signal again with the
        key it had (after a timeout, a lost connection, a crash) and it is accepted and
        recorded once, by whichever run of the workflow id took it first, across
        continue-as-new too, and even if that run has closed since. Without one, nothing is
        deduplicated: each call is a signal of its own.
        """
        name = handler_name(signal, "signal")
        values = [arg] if arg is not None and not args else list(args)
        key = check_request_id(request_id)
        await self._calls.signal_workflow(
            SignalWorkflowInput(self.id, self.run_id, name, values, {}, request_id=key)
        )

    async def query(
        self,
        query: str | Callable[..., Any],
        arg: Any = None,
        *,
        args: Sequence[Any] = (),
        result_type: Any = None,
        rpc_timeout: float = 30.0,
    ) -> Any:
        """Ask the workflow's query handler; answered by a worker from its cached state or by
        replay. Nothing is written to history.

        Raises:
            WorkflowQueryFailedError: unknown query name, or the handler raised.
            RPCTimeoutOrCancelledError: no worker answered within ``rpc_timeout`` seconds.
        """
        name = handler_name(query, "query")
        if result_type is None and callable(query):
            result_type = _arg_and_return_types(query, skip_self=True)[1]
        values = [arg] if arg is not None and not args else list(args)
        call = QueryWorkflowInput(
            self.id,
            self.run_id,
            name,
            values,
            None,
            {},
            result_type,
            timedelta(seconds=rpc_timeout),
        )
        return await self._calls.query_workflow(call)

    async def start_update(
        self,
        update: str | Callable[..., Any],
        arg: Any = None,
        *,
        args: Sequence[Any] = (),
        id: str | None = None,
        wait_for_stage: WorkflowUpdateStage = WorkflowUpdateStage.ACCEPTED,
        result_type: Any = None,
        rpc_timeout: float | None = None,
    ) -> WorkflowUpdateHandle[Any]:
        """Send an update and wait until it reaches ``wait_for_stage`` (accepted by default).

        An ``id`` deduplicates: sending the same update id again returns the first one's
        handle and never applies it twice.

        Raises:
            WorkflowUpdateFailedError: the validator rejected it.
        """
        values = [arg] if arg is not None and not args else list(args)
        name = handler_name(update, "update")
        if result_type is None and callable(update):
            result_type = _arg_and_return_types(update, skip_self=True)[1]
        call = StartWorkflowUpdateInput(
            id=self.id,
            run_id=self.run_id,
            first_execution_run_id=self.first_execution_run_id,
            update_id=id,
            update=name,
            args=values,
            wait_for_stage=wait_for_stage,
            headers={},
            ret_type=result_type,
            rpc_timeout=None if rpc_timeout is None else timedelta(seconds=rpc_timeout),
        )
        return await self._calls.start_workflow_update(call)

    async def execute_update(
        self,
        update: str | Callable[..., Any],
        arg: Any = None,
        *,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: Any = None,
        rpc_timeout: float | None = None,
    ) -> Any:
        """Send an update and return its result.

        Raises:
            WorkflowUpdateFailedError: rejected by the validator, or the handler failed.
        """
        handle = await self.start_update(
            update,
            arg,
            args=args,
            id=id,
            wait_for_stage=WorkflowUpdateStage.COMPLETED,
            result_type=result_type,
            rpc_timeout=rpc_timeout,
        )
        return await handle.result()

    def get_update_handle(
        self, update_id: str, *, workflow_run_id: str | None = None, result_type: Any = None
    ) -> WorkflowUpdateHandle[Any]:
        """A handle to an update sent earlier (``workflow_run_id`` defaults to this handle's)."""
        update_id = check_update_id(update_id)
        run_id = (
            check_run_id(workflow_run_id, "workflow_run_id") or self.run_id or self.result_run_id
        )
        if run_id is None:
            raise ValueError("get_update_handle needs the run id of the workflow")
        return WorkflowUpdateHandle(
            self._connection,
            update_id,
            self.id,
            "",
            workflow_run_id=run_id,
            result_type=result_type,
        )

    async def cancel(self, *, reason: str = "") -> None:
        """Request cancellation: it reaches the workflow as ``asyncio.CancelledError`` at its
        await points; the workflow may clean up (run compensations) before it ends."""
        await self._calls.cancel_workflow(
            CancelWorkflowInput(self.id, self.run_id, self.first_execution_run_id, reason)
        )

    async def terminate(self, reason: str | None = None) -> None:
        """End the workflow at once, running none of its code."""
        await self._calls.terminate_workflow(
            TerminateWorkflowInput(self.id, self.run_id, self.first_execution_run_id, [], reason)
        )

    async def reset(
        self,
        event_id: int | None = None,
        *,
        reset_type: ResetType = ResetType.LAST_WORKFLOW_TASK,
        reason: str,
        reapply_signals: bool = True,
    ) -> str:
        """Run one of the workflow's tasks again, on the current code, in a new run; returns
        the new run's id.

        As in Temporal, the new run of the same workflow id carries the history before the
        workflow task that completed at ``event_id`` (a ``WorkflowTaskCompleted`` event of this
        handle's run; without one, the task ``reset_type`` names), and that task runs again.
        The open run of the workflow, if any, is terminated with ``reason``; the signals
        received after that point are delivered to the new run again, once, in order (unless
        ``reapply_signals`` is false). Activities and timers started before the point and not
        finished there are started again in the new run; those started after it are dropped
        with the old run, whose late results are refused. A closed run can be reset too:
        reset a FAILED workflow once its bug is fixed. ``result()`` on the old run's handle
        follows to the new run; ``describe()`` shows the reset in both runs.

        Example::

            new_run_id = await client.get_workflow_handle("order-1").reset(
                reason="fixed the tax rounding bug"
            )

        Raises:
            WorkflowNotFoundError: no such workflow run.
            ValueError: ``event_id`` is not a ``WorkflowTaskCompleted`` event of the run, the
                run has no completed workflow task, or a child workflow was still running at
                that point (not supported yet).
        """
        c = self._connection
        return await c.store.reset_workflow(
            ResetRequest(
                namespace=c.namespace,
                workflow_id=self.id,
                run_id=self.run_id,
                reason=reason,
                event_id=event_id,
                reset_type=reset_type,
                reapply_signals=reapply_signals,
                identity=c.identity,
            )
        )

    async def delete(self) -> None:
        """Delete the run with its history and everything it owns (an open run is terminated
        first), as Temporal's DeleteWorkflowExecution does; ``describe()`` then raises
        ``WorkflowNotFoundError``. Other runs of the workflow id are kept.

        Raises:
            WorkflowNotFoundError: no such workflow run.
        """
        c = self._connection
        await c.store.delete_workflow(c.namespace, self.id, self.run_id, c.identity)

    async def describe(self) -> WorkflowExecutionDescription:
        """Status, type, times, history length, the failure of a stuck workflow task, and
        the activities and children an open run waits on."""
        return await self._calls.describe_workflow(DescribeWorkflowInput(self.id, self.run_id))

    async def fetch_history(self) -> WorkflowHistory:
        """The run's full event history."""
        ex = await self._execution()
        events = await self._connection.store.get_history(ex.run_id)
        events = await resolve_events(self._connection.data_converter.external_storage, events)
        return WorkflowHistory(workflow_id=self.id, run_id=ex.run_id, events=events)

    def fetch_history_events(
        self,
        *,
        page_size: int | None = None,
        next_page_token: bytes | None = None,
        wait_new_event: bool = False,
        after_event_id: int = 0,
    ) -> WorkflowHistoryEventAsyncIterator:
        """The run's events in order (those after ``after_event_id``), read a page at a time.

        With ``wait_new_event`` the iterator waits for new events as they are recorded and
        ends after the run's closing event (``perdure workflow show --follow``).

        Args:
            page_size: events per page (one database read each); 1,000 by default.
            next_page_token: continue after the page this token came from (the
                ``next_page_token`` of an earlier iterator over this run's history).
            wait_new_event: follow the history until the run closes.
            after_event_id: start after this event (ignored with ``next_page_token``).

        Raises:
            InvalidArgumentError: ``page_size`` < 1, or the token is not a history token of
                this run.
        """
        if page_size is not None and page_size < 1:
            raise InvalidArgumentError(f"page_size must be at least 1, got {page_size}")
        return self._calls.fetch_workflow_history_events(
            FetchWorkflowHistoryEventsInput(
                self.id, self.run_id, page_size, next_page_token, wait_new_event, after_event_id
            )
        )
