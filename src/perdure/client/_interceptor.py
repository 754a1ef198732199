"""Client interceptors, in the shapes of Temporal's Python SDK: ``Interceptor`` wraps the
client's ``OutboundInterceptor`` chain, whose methods each take one ``*Input`` dataclass
(``_inputs``).

As in Temporal the inputs are plain dataclasses: an interceptor may set
``input.headers = {**input.headers, key: payload}`` and call on. Headers are recorded with
the call (the start event, the signal event) and reach the workflow's inbound interceptors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perdure.client._inputs import (
    CancelWorkflowInput,
    CountWorkflowsInput,
    CreateScheduleInput,
    DescribeWorkflowInput,
    FetchWorkflowHistoryEventsInput,
    ListWorkflowsInput,
    QueryWorkflowInput,
    SignalWorkflowInput,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
    TerminateWorkflowInput,
    UpdateWithStartStartWorkflowInput,
    UpdateWithStartUpdateWorkflowInput,
)

if TYPE_CHECKING:
    from perdure.client._description import WorkflowExecutionDescription
    from perdure.client._handle import WorkflowHandle
    from perdure.client._history_events import WorkflowHistoryEventAsyncIterator
    from perdure.client._listing import WorkflowExecutionAsyncIterator
    from perdure.client._records import WorkflowExecutionCount
    from perdure.client._schedule_handle import ScheduleHandle
    from perdure.client._update import WorkflowUpdateHandle

__all__ = [
    "CancelWorkflowInput",
    "CountWorkflowsInput",
    "CreateScheduleInput",
    "DescribeWorkflowInput",
    "FetchWorkflowHistoryEventsInput",
    "Interceptor",
    "ListWorkflowsInput",
    "OutboundInterceptor",
    "QueryWorkflowInput",
    "SignalWorkflowInput",
    "StartWorkflowInput",
    "StartWorkflowUpdateInput",
    "StartWorkflowUpdateWithStartInput",
    "TerminateWorkflowInput",
    "UpdateWithStartStartWorkflowInput",
    "UpdateWithStartUpdateWorkflowInput",
]


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
