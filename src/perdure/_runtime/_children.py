"""Child workflows and other workflows as workflow code sees them: started or signalled or
cancelled by command, resolved by history events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from perdure._common.commands import (
    Command,
    RequestCancelExternalWorkflow,
    SignalExternalWorkflow,
    StartChildWorkflow,
)
from perdure._common.events import EventType, HistoryEvent
from perdure._common.payload import Payload
from perdure._errors import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
    TimeoutError,
    WorkflowAlreadyStartedError,
)
from perdure.common._priority import priority_dict
from perdure.converter import FailureConverter, PayloadConverter
from perdure.workflow._info import ChildWorkflowCancellationType, ChildWorkflowHandle
from perdure.workflow._interceptor import StartChildWorkflowInput

CHILD_EVENTS = frozenset(
    {
        EventType.CHILD_WORKFLOW_EXECUTION_STARTED,
        EventType.START_CHILD_WORKFLOW_EXECUTION_FAILED,
        EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED,
        EventType.CHILD_WORKFLOW_EXECUTION_FAILED,
        EventType.CHILD_WORKFLOW_EXECUTION_CANCELED,
        EventType.CHILD_WORKFLOW_EXECUTION_TERMINATED,
        EventType.CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
    }
)
EXTERNAL_EVENTS = frozenset(
    {
        EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
        EventType.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
        EventType.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
        EventType.REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED,
    }
)


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


@dataclass(slots=True)
class _Child:
    seq: int
    workflow_id: str
    workflow_type: str
    started: asyncio.Future[str]
    result: asyncio.Future[Payload]
    cancellation_type: int
    result_type: Any
    run_id: str = ""
    cancel_requested: bool = False


class Children:
    """The children one workflow run started, and its requests to other workflows."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        payloads: PayloadConverter,
        failures: FailureConverter,
        add_command: Callable[[Command], None],
        namespace: str,
        default_task_queue: str,
    ) -> None:
        self._loop = loop
        self._payloads = payloads
        self._failures = failures
        self._add_command = add_command
        self._namespace = namespace
        self._task_queue = default_task_queue
        self._pending: dict[int, _Child] = {}
        self._externals: dict[int, asyncio.Future[None]] = {}
        self._child_seq = 0
        self._external_seq = 0
        # How a child's handle signals it: through the workflow's outbound interceptors.
        self.signal_child: Callable[[str, str, list[Any]], Awaitable[None]] = (
            lambda workflow_id, name, args: self.signal_external(workflow_id, None, name, args)
        )

    def resolve(self, event: HistoryEvent) -> None:
        """Apply an event about a child or a request to another workflow."""
        if event.event_type in CHILD_EVENTS:
            self._child_event(event)
            return
        a = event.attributes
        kind = event.event_type
        future = self._externals.pop(a["seq"], None)
        if future is not None and not future.done():
            if kind in (
                EventType.EXTERNAL_WORKFLOW_EXECUTION_SIGNALED,
                EventType.EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
            ):
                future.set_result(None)
            else:
                future.set_exception(
                    ApplicationError(
                        a.get("message") or "External workflow not found",
                        type="ExternalWorkflowExecutionNotFound",
                    )
                )

    def _child_event(self, event: HistoryEvent) -> None:
        a = event.attributes
        kind = event.event_type
        child = self._pending.get(a["seq"])
        if child is None:
            return
        if kind is EventType.CHILD_WORKFLOW_EXECUTION_STARTED:
            child.run_id = a["run_id"]
            if not child.started.done():
                child.started.set_result(child.run_id)
            return
        if kind is EventType.START_CHILD_WORKFLOW_EXECUTION_FAILED:
            self._pending.pop(child.seq, None)
            if not child.started.done():
                child.started.set_exception(
                    WorkflowAlreadyStartedError(child.workflow_id, child.workflow_type)
                )
            return
        self._pending.pop(child.seq, None)
        if child.result.done():
            return
        if kind is EventType.CHILD_WORKFLOW_EXECUTION_COMPLETED:
            child.result.set_result(a["result"])
            return
        cause: BaseException
        if kind is EventType.CHILD_WORKFLOW_EXECUTION_FAILED:
            cause = self._failures.from_failure(a["failure"], self._payloads)
        elif kind is EventType.CHILD_WORKFLOW_EXECUTION_CANCELED:
            cause = CancelledError("Child workflow cancelled")
        elif kind is EventType.CHILD_WORKFLOW_EXECUTION_TERMINATED:
            cause = TerminatedError(a.get("reason") or "Child workflow terminated")
        else:
            cause = TimeoutError("Child workflow timed out", type=None)
        child.result.set_exception(self._child_error(child, cause))

    def _child_error(self, child: _Child, cause: BaseException) -> ChildWorkflowError:
        return ChildWorkflowError(
            f"Child workflow {child.workflow_id} did not complete",
            namespace=self._namespace,
            workflow_id=child.workflow_id,
            run_id=child.run_id,
            workflow_type=child.workflow_type,
            cause=cause,
        )

    def start_child_workflow(self, call: StartChildWorkflowInput) -> Awaitable[Any]:
        """Record the command that starts the child; the handle once it has started."""
        self._child_seq += 1
        seq = self._child_seq
        memo = dict(call.memo) if call.memo is not None else None
        command = StartChildWorkflow(
            seq=seq,
            workflow_id=call.id,
            workflow_type=call.workflow,
            task_queue=call.task_queue or self._task_queue,
            input=self._payloads.to_payloads(list(call.args)),
            parent_close_policy=int(call.parent_close_policy),
            execution_timeout=_seconds(call.execution_timeout),
            run_timeout=_seconds(call.run_timeout),
            task_timeout=_seconds(call.task_timeout),
            retry_policy=call.retry_policy.to_dict() if call.retry_policy else None,
            id_reuse_policy=int(call.id_reuse_policy),
            memo=({k: self._payloads.to_payload(v) for k, v in memo.items()} if memo else None),
            search_attributes=call.search_attributes,
            header=dict(call.headers) if call.headers else None,
            priority=priority_dict(call.priority),
        )
        self._add_command(command)
        child = _Child(
            seq=seq,
            workflow_id=command.workflow_id,
            workflow_type=call.workflow,
            started=self._loop.create_future(),
            result=self._loop.create_future(),
            cancellation_type=int(call.cancellation_type),
            result_type=call.ret_type,
        )
        self._pending[seq] = child
        return self._child_started(child)

    async def _child_started(self, child: _Child) -> ChildWorkflowHandle[Any]:
        await child.started
        handle: ChildWorkflowHandle[Any] = ChildWorkflowHandle(
            self._await_child(child), loop=self._loop
        )
        handle._cancel_hook = lambda: self._cancel(child)
        handle.id = child.workflow_id
        handle.first_execution_run_id = child.run_id

        handle._signaller = lambda name, values: self.signal_child(child.workflow_id, name, values)
        return handle

    async def _await_child(self, child: _Child) -> Any:
        payload = await child.result
        return self._payloads.from_payload(payload, child.result_type)

    def _cancel(self, child: _Child) -> bool:
        """The handle was cancelled (by the code, or by the parent's own cancellation)."""
        if child.result.done():
            return False
        cancelled = self._child_error(child, CancelledError("Child workflow cancelled"))
        kind = child.cancellation_type
        if kind == ChildWorkflowCancellationType.ABANDON:
            child.result.set_exception(cancelled)
            return True
        if not child.cancel_requested:
            child.cancel_requested = True
            requested = self.cancel_external(child.workflow_id, child.run_id or None)
            if kind == ChildWorkflowCancellationType.WAIT_CANCELLATION_REQUESTED:

                def settle(_: asyncio.Future[None]) -> None:
                    if not child.result.done():
                        child.result.set_exception(cancelled)

                requested.add_done_callback(settle)
        if kind == ChildWorkflowCancellationType.TRY_CANCEL:
            child.result.set_exception(cancelled)
        # WAIT_CANCELLATION_COMPLETED: the child's own close settles the handle.
        return True

    def signal_external(
        self,
        workflow_id: str,
        run_id: str | None,
        name: str,
        args: Sequence[Any],
        header: dict[str, Payload] | None = None,
    ) -> asyncio.Future[None]:
        self._external_seq += 1
        seq = self._external_seq
        self._add_command(
            SignalExternalWorkflow(
                seq, workflow_id, run_id, name, self._payloads.to_payloads(list(args)), header
            )
        )
        future: asyncio.Future[None] = self._loop.create_future()
        self._externals[seq] = future
        return future

    def cancel_external(self, workflow_id: str, run_id: str | None) -> asyncio.Future[None]:
        self._external_seq += 1
        seq = self._external_seq
        self._add_command(RequestCancelExternalWorkflow(seq, workflow_id, run_id))
        future: asyncio.Future[None] = self._loop.create_future()
        self._externals[seq] = future
        return future
