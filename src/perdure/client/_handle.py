from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson

from perdure._common.events import EventType, HistoryEvent
from perdure._common.identifiers import check_run_id, check_update_id
from perdure._common.status import WorkflowExecutionStatus
from perdure._errors import (
    CancelledError,
    InvalidArgumentError,
    TerminatedError,
    TimeoutError,
    WorkflowFailureError,
)
from perdure._store._types import Execution, ResetRequest
from perdure.client._description import (
    PendingActivityInfo,
    PendingChildInfo,
    WorkflowExecutionRawDescription,
    WorkflowResetInfo,
    pending_infos,
)
from perdure.client._history_events import WorkflowHistoryEventAsyncIterator
from perdure.client._interceptor import (
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
from perdure.common._search_attributes import TypedSearchAttributes, decode_pairs
from perdure.converter._external import resolve_events
from perdure.workflow._definition import _arg_and_return_types, handler_name

if TYPE_CHECKING:
    from perdure.client._client import Client

ReturnType = TypeVar("ReturnType")

log = logging.getLogger("perdure.client")


@dataclass(frozen=True)
class WorkflowTaskFailureInfo:
    """Why the workflow's current task keeps failing (the workflow itself stays open)."""

    message: str
    type: str
    stack_trace: str
    attempt: int
    time: datetime


@dataclass(frozen=True)
class WorkflowExecutionDescription:
    """What ``WorkflowHandle.describe()`` returns.

    ``pending_activities`` and ``pending_children`` list what an open run waits on (empty
    once it has closed); ``raw_description`` holds the same lists, where Temporal's
    describe response keeps them.
    """

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    namespace: str
    status: WorkflowExecutionStatus
    start_time: datetime
    close_time: datetime | None
    history_length: int
    history_size: int
    memo: dict[str, Any]
    last_workflow_task_failure: WorkflowTaskFailureInfo | None
    workflow_task_attempt: int
    attempt: int = 1
    first_execution_run_id: str = ""
    typed_search_attributes: TypedSearchAttributes = field(default_factory=TypedSearchAttributes)
    parent_id: str | None = None
    parent_run_id: str | None = None
    pending_activities: Sequence[PendingActivityInfo] = ()
    pending_children: Sequence[PendingChildInfo] = ()
    reset_from: WorkflowResetInfo | None = None
    """The reset that made this run, if one did."""
    reset_to: WorkflowResetInfo | None = None
    """The latest reset that went back into this run's history (or ended it), if any."""

    @property
    def raw_description(self) -> WorkflowExecutionRawDescription:
        """The pending lists, as ``desc.raw_description.pending_activities`` reads them on
        Temporal."""
        return WorkflowExecutionRawDescription(self.pending_activities, self.pending_children)


HISTORY_FORMAT = "perdure.workflow-history"
HISTORY_FORMAT_VERSION = 1


@dataclass(frozen=True)
class WorkflowHistory:
    """A run's events, as ``fetch_history()`` returns them; JSON round-trips exactly.

    The JSON form (``to_json``) is stable and versioned: ``{"format":
    "perdure.workflow-history", "version": 1, "workflow_id", "run_id", "events": [...]}``,
    each event ``{"event_id", "event_type", "event_time", "attributes"}`` with payloads as
    ``{"metadata": {key: base64}, "data": base64}``. docs/testing.md describes it; a file
    written by this version is read by every later one.
    """

    workflow_id: str
    events: Sequence[HistoryEvent]
    run_id: str = ""

    def to_json(self) -> str:
        """The history as JSON, in the versioned format above."""
        return orjson.dumps(self.to_json_dict(), option=orjson.OPT_INDENT_2).decode()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": HISTORY_FORMAT,
            "version": HISTORY_FORMAT_VERSION,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "events": [e.to_json_dict() for e in self.events],
        }

    @staticmethod
    def from_json(
        workflow_id: str | None, history: str | bytes | dict[str, Any]
    ) -> WorkflowHistory:
        """Read a history written by :meth:`to_json` (``workflow_id`` overrides the file's).

        Raises:
            ValueError: the text is not a perdure workflow history, or one written by a newer
                perdure than this one.
        """
        try:
            obj = orjson.loads(history) if isinstance(history, str | bytes) else history
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"Not a workflow history: invalid JSON ({exc})") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("events"), list):
            raise ValueError(
                'Not a workflow history: expected a JSON object with an "events" list, as '
                "WorkflowHistory.to_json() writes"
            )
        fmt = obj.get("format", HISTORY_FORMAT)
        version = obj.get("version", HISTORY_FORMAT_VERSION)
        if fmt != HISTORY_FORMAT:
            raise ValueError(f"Not a perdure workflow history: format is {fmt!r}")
        if not isinstance(version, int) or version > HISTORY_FORMAT_VERSION:
            raise ValueError(
                f"This history is in format version {version!r}; this perdure reads versions "
                f"up to {HISTORY_FORMAT_VERSION}. Upgrade perdure to read it."
            )
        try:
            events = [HistoryEvent.from_json_dict(e) for e in obj["events"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"Not a workflow history: a malformed event ({exc!r})") from exc
        return WorkflowHistory(
            workflow_id=workflow_id or obj.get("workflow_id", ""),
            run_id=obj.get("run_id", ""),
            events=events,
        )


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
        client: Client,
        id: str,
        *,
        run_id: str | None = None,
        result_run_id: str | None = None,
        first_execution_run_id: str | None = None,
        result_type: Any = None,
    ) -> None:
        self._client = client
        self.id = id
        self.run_id = run_id
        self.result_run_id = result_run_id
        self.first_execution_run_id = first_execution_run_id
        self._result_type = result_type

    async def _execution(self, run_id: str | None = None) -> Execution:
        c = self._client
        return await c._store.describe(c.namespace, self.id, run_id or self.run_id)

    async def result(self, *, follow_runs: bool = True) -> ReturnType:
        """Wait for the workflow to close and return its result.

        Raises:
            WorkflowFailureError: it failed, was cancelled, terminated or timed out; ``.cause``
                says which.
        """
        c = self._client
        run_id = self.result_run_id or self.run_id
        while True:
            async with c._auto_time_skipping():
                ex = await c._wait_closed(self.id, run_id)
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
            failure = await c._decode_failure(attrs["failure"])
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
        self, signal: str | Callable[..., Any], arg: Any = None, *, args: Sequence[Any] = ()
    ) -> None:
        """Send a signal: recorded in history and delivered to the handler exactly once."""
        name = handler_name(signal, "signal")
        values = [arg] if arg is not None and not args else list(args)
        await self._client._outbound.signal_workflow(
            SignalWorkflowInput(self.id, self.run_id, name, values, {})
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
        return await self._client._outbound.query_workflow(call)

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
        return await self._client._outbound.start_workflow_update(call)

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
            self._client, update_id, self.id, "", workflow_run_id=run_id, result_type=result_type
        )

    async def cancel(self, *, reason: str = "") -> None:
        """Request cancellation: it reaches the workflow as ``asyncio.CancelledError`` at its
        await points; the workflow may clean up (run compensations) before it ends."""
        await self._client._outbound.cancel_workflow(
            CancelWorkflowInput(self.id, self.run_id, self.first_execution_run_id, reason)
        )

    async def terminate(self, reason: str | None = None) -> None:
        """End the workflow at once, running none of its code."""
        await self._client._outbound.terminate_workflow(
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
        c = self._client
        return await c._store.reset_workflow(
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
        c = self._client
        await c._store.delete_workflow(c.namespace, self.id, self.run_id, c.identity)

    async def describe(self) -> WorkflowExecutionDescription:
        """Status, type, times, history length, the failure of a stuck workflow task, and
        the activities and children an open run waits on."""
        return await self._client._outbound.describe_workflow(
            DescribeWorkflowInput(self.id, self.run_id)
        )

    async def _describe(self) -> WorkflowExecutionDescription:
        c = self._client
        ex, work = await c._store.describe_pending(c.namespace, self.id, self.run_id)
        failure = None
        if ex.last_failure is not None and ex.is_open:
            lf = ex.last_failure
            # Its message and stack trace may be encoded (a failure converter with encoded
            # attributes): read them back as the worker wrote them.
            decoded = await self._client.data_converter.decode_failure(lf)
            failure = WorkflowTaskFailureInfo(
                message=decoded.message,
                type=lf.get("type", ""),
                stack_trace=(decoded.failure or {}).get("stack_trace", ""),
                attempt=lf.get("attempt", 0),
                time=_utc(lf.get("time", 0.0)),
            )
        activities, children = await pending_infos(c, work)
        return WorkflowExecutionDescription(
            id=ex.workflow_id,
            run_id=ex.run_id,
            workflow_type=ex.workflow_type,
            task_queue=ex.task_queue,
            namespace=ex.namespace,
            status=ex.status,
            start_time=_utc(ex.start_time),
            close_time=_utc(ex.close_time) if ex.close_time is not None else None,
            history_length=ex.next_event_id - 1,
            history_size=ex.history_size,
            memo=await self._client._decode_memo(ex.memo),
            last_workflow_task_failure=failure,
            workflow_task_attempt=ex.wft_attempt,
            attempt=ex.attempt,
            first_execution_run_id=ex.first_run_id,
            typed_search_attributes=decode_pairs(ex.search_attributes),
            parent_id=ex.parent["workflow_id"] if ex.parent else None,
            parent_run_id=ex.parent["run_id"] if ex.parent else None,
            pending_activities=activities,
            pending_children=children,
            reset_from=WorkflowResetInfo._from_dict((ex.reset_points or {}).get("from")),
            reset_to=WorkflowResetInfo._from_dict((ex.reset_points or {}).get("to")),
        )

    async def fetch_history(self) -> WorkflowHistory:
        """The run's full event history."""
        ex = await self._execution()
        events = await self._client._store.get_history(ex.run_id)
        events = await resolve_events(self._client.data_converter.external_storage, events)
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
        return self._client._outbound.fetch_workflow_history_events(
            FetchWorkflowHistoryEventsInput(
                self.id, self.run_id, page_size, next_page_token, wait_new_event, after_event_id
            )
        )
