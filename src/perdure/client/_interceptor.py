"""Client interceptors, in the shapes of Temporal's Python SDK: ``Interceptor`` wraps the
client's ``OutboundInterceptor`` chain, whose methods each take one ``*Input`` dataclass.

As in Temporal the inputs are plain dataclasses: an interceptor may set
``input.headers = {**input.headers, key: payload}`` and call on. Headers are recorded with
the call (the start event, the signal event) and reach the workflow's inbound interceptors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from perdure._common.payload import Payload
from perdure.common._enums import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from perdure.common._retry import RetryPolicy

if TYPE_CHECKING:
    from perdure.client._client import WorkflowExecutionCount
    from perdure.client._handle import WorkflowExecutionDescription, WorkflowHandle
    from perdure.client._history_events import WorkflowHistoryEventAsyncIterator
    from perdure.client._listing import WorkflowExecutionAsyncIterator
    from perdure.client._schedule import Schedule, ScheduleBackfill
    from perdure.client._schedule_handle import ScheduleHandle
    from perdure.client._update import WorkflowUpdateHandle, WorkflowUpdateStage
    from perdure.common._priority import Priority
    from perdure.common._search_attributes import TypedSearchAttributes


@dataclass
class StartWorkflowInput:
    """Input for :meth:`OutboundInterceptor.start_workflow`."""

    workflow: str
    args: Sequence[Any]
    id: str
    task_queue: str
    execution_timeout: timedelta | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    id_reuse_policy: WorkflowIDReusePolicy
    id_conflict_policy: WorkflowIDConflictPolicy
    retry_policy: RetryPolicy | None
    memo: Mapping[str, Any] | None
    search_attributes: TypedSearchAttributes | None
    start_delay: timedelta | None
    headers: Mapping[str, Payload]
    start_signal: str | None
    start_signal_args: Sequence[Any]
    ret_type: type | None
    request_eager_start: bool = False
    priority: Priority | None = None


@dataclass
class SignalWorkflowInput:
    """Input for :meth:`OutboundInterceptor.signal_workflow`."""

    id: str
    run_id: str | None
    signal: str
    args: Sequence[Any]
    headers: Mapping[str, Payload]


@dataclass
class QueryWorkflowInput:
    """Input for :meth:`OutboundInterceptor.query_workflow`."""

    id: str
    run_id: str | None
    query: str
    args: Sequence[Any]
    reject_condition: Any
    headers: Mapping[str, Payload]
    ret_type: type | None
    rpc_timeout: timedelta | None


@dataclass
class StartWorkflowUpdateInput:
    """Input for :meth:`OutboundInterceptor.start_workflow_update`."""

    id: str
    run_id: str | None
    first_execution_run_id: str | None
    update_id: str | None
    update: str
    args: Sequence[Any]
    wait_for_stage: WorkflowUpdateStage
    headers: Mapping[str, Payload]
    ret_type: type | None
    rpc_timeout: timedelta | None


@dataclass
class UpdateWithStartUpdateWorkflowInput:
    """The update half of :class:`StartWorkflowUpdateWithStartInput`."""

    update_id: str | None
    update: str
    args: Sequence[Any]
    wait_for_stage: WorkflowUpdateStage
    headers: Mapping[str, Payload]
    ret_type: type | None


@dataclass
class UpdateWithStartStartWorkflowInput:
    """The start half of :class:`StartWorkflowUpdateWithStartInput`."""

    workflow: str
    args: Sequence[Any]
    id: str
    task_queue: str
    execution_timeout: timedelta | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    id_reuse_policy: WorkflowIDReusePolicy
    id_conflict_policy: WorkflowIDConflictPolicy
    retry_policy: RetryPolicy | None
    memo: Mapping[str, Any] | None
    search_attributes: TypedSearchAttributes | None
    start_delay: timedelta | None
    headers: Mapping[str, Payload]
    ret_type: type | None


@dataclass
class StartWorkflowUpdateWithStartInput:
    """Input for :meth:`OutboundInterceptor.start_update_with_start_workflow`."""

    start_workflow_input: UpdateWithStartStartWorkflowInput
    update_workflow_input: UpdateWithStartUpdateWorkflowInput
    rpc_timeout: timedelta | None
    # Called with the workflow's handle once it has started (or been found running).
    _on_start: Callable[[WorkflowHandle[Any]], None]


@dataclass
class CancelWorkflowInput:
    """Input for :meth:`OutboundInterceptor.cancel_workflow`."""

    id: str
    run_id: str | None
    first_execution_run_id: str | None
    reason: str


@dataclass
class TerminateWorkflowInput:
    """Input for :meth:`OutboundInterceptor.terminate_workflow`."""

    id: str
    run_id: str | None
    first_execution_run_id: str | None
    args: Sequence[Any]
    reason: str | None


@dataclass
class DescribeWorkflowInput:
    """Input for :meth:`OutboundInterceptor.describe_workflow`."""

    id: str
    run_id: str | None


@dataclass
class FetchWorkflowHistoryEventsInput:
    """Input for :meth:`OutboundInterceptor.fetch_workflow_history_events`."""

    id: str
    run_id: str | None
    page_size: int | None
    next_page_token: bytes | None
    wait_new_event: bool
    after_event_id: int = 0


@dataclass
class ListWorkflowsInput:
    """Input for :meth:`OutboundInterceptor.list_workflows`."""

    query: str | None
    page_size: int
    next_page_token: bytes | None
    limit: int | None


@dataclass
class CountWorkflowsInput:
    """Input for :meth:`OutboundInterceptor.count_workflows`."""

    query: str | None
    max_count: int | None = None  # perdure's: stop counting there


@dataclass
class CreateScheduleInput:
    """Input for :meth:`OutboundInterceptor.create_schedule`."""

    id: str
    schedule: Schedule
    trigger_immediately: bool
    backfill: Sequence[ScheduleBackfill]
    memo: Mapping[str, Any] | None
    search_attributes: TypedSearchAttributes | None


class Interceptor:
    """Intercepts a client's calls: override :meth:`intercept_client` to wrap the chain.
    Given to ``Client.connect(interceptors=[...])``; one that also subclasses
    ``perdure.worker.Interceptor`` is used by every worker of the client too.

    Example::

        class Auditing(Interceptor):
            def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
                return AuditingOutbound(next)
    """

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        """Wrap ``next`` (return it unchanged to intercept nothing)."""
        return next


class OutboundInterceptor:
    """One link of the client's chain: override the calls you need and call ``self.next``'s
    (or ``super()``'s) from them."""

    def __init__(self, next: OutboundInterceptor) -> None:
        self.next = next

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any]:
        """``Client.start_workflow`` (and ``execute_workflow``, signal-with-start)."""
        return await self.next.start_workflow(input)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        """``WorkflowHandle.signal``."""
        await self.next.signal_workflow(input)

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        """``WorkflowHandle.query``."""
        return await self.next.query_workflow(input)

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        """``WorkflowHandle.start_update`` / ``execute_update``."""
        return await self.next.start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        """``Client.start_update_with_start_workflow`` / ``execute_update_with_start_workflow``."""
        return await self.next.start_update_with_start_workflow(input)

    async def cancel_workflow(self, input: CancelWorkflowInput) -> None:
        """``WorkflowHandle.cancel``."""
        await self.next.cancel_workflow(input)

    async def terminate_workflow(self, input: TerminateWorkflowInput) -> None:
        """``WorkflowHandle.terminate``."""
        await self.next.terminate_workflow(input)

    async def describe_workflow(self, input: DescribeWorkflowInput) -> WorkflowExecutionDescription:
        """``WorkflowHandle.describe``."""
        return await self.next.describe_workflow(input)

    def fetch_workflow_history_events(
        self, input: FetchWorkflowHistoryEventsInput
    ) -> WorkflowHistoryEventAsyncIterator:
        """``WorkflowHandle.fetch_history_events``."""
        return self.next.fetch_workflow_history_events(input)

    def list_workflows(self, input: ListWorkflowsInput) -> WorkflowExecutionAsyncIterator:
        """``Client.list_workflows``."""
        return self.next.list_workflows(input)

    async def count_workflows(self, input: CountWorkflowsInput) -> WorkflowExecutionCount:
        """``Client.count_workflows``."""
        return await self.next.count_workflows(input)

    async def create_schedule(self, input: CreateScheduleInput) -> ScheduleHandle:
        """``Client.create_schedule``."""
        return await self.next.create_schedule(input)
