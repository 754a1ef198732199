"""Workflow interceptors, in the shapes of Temporal's Python SDK: an inbound chain the worker
calls into (run, signals, queries, updates) and an outbound chain the workflow's code calls
out through (activities, children, external signals, continue-as-new).

Interceptors run inside the workflow's deterministic runtime, on replay as on the first run:
what they do must be deterministic too (``workflow.now()``, ``workflow.random()``), and
what they put in ``headers`` on an outbound call is recorded with that call in history.

Each hook takes one ``*Input`` dataclass. As in Temporal they are plain dataclasses, so an
interceptor may set ``input.headers = {**input.headers, key: payload}`` before calling on
(``dataclasses.replace`` works as well).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from perdure._common.payload import Payload
from perdure.common._enums import WorkflowIDReusePolicy
from perdure.common._priority import Priority
from perdure.common._retry import RetryPolicy

if TYPE_CHECKING:
    from perdure.workflow._info import ActivityHandle, Info


@dataclass
class ExecuteWorkflowInput:
    """Input for :meth:`WorkflowInboundInterceptor.execute_workflow`."""

    type: type
    run_fn: Callable[..., Awaitable[Any]]  # bound to the workflow object
    args: Sequence[Any]
    headers: Mapping[str, Payload]


@dataclass
class HandleSignalInput:
    """Input for :meth:`WorkflowInboundInterceptor.handle_signal`."""

    signal: str
    args: Sequence[Any]
    headers: Mapping[str, Payload]


@dataclass
class HandleQueryInput:
    """Input for :meth:`WorkflowInboundInterceptor.handle_query`."""

    id: str
    query: str
    args: Sequence[Any]
    headers: Mapping[str, Payload]


@dataclass
class HandleUpdateInput:
    """Input for :meth:`WorkflowInboundInterceptor.handle_update_validator` and
    :meth:`WorkflowInboundInterceptor.handle_update_handler`."""

    id: str
    update: str
    args: Sequence[Any]
    headers: Mapping[str, Payload]


@dataclass
class StartActivityInput:
    """Input for :meth:`WorkflowOutboundInterceptor.start_activity`."""

    activity: str
    args: Sequence[Any]
    activity_id: str | None
    task_queue: str | None
    schedule_to_close_timeout: timedelta | None
    schedule_to_start_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    heartbeat_timeout: timedelta | None
    retry_policy: RetryPolicy | None
    cancellation_type: Any  # ActivityCancellationType
    headers: Mapping[str, Payload]
    ret_type: type | None = None
    priority: Priority | None = None
    concurrency_key: str | None = None


@dataclass
class StartLocalActivityInput:
    """Input for :meth:`WorkflowOutboundInterceptor.start_local_activity`."""

    activity: str
    args: Sequence[Any]
    activity_id: str | None
    schedule_to_close_timeout: timedelta | None
    start_to_close_timeout: timedelta | None
    retry_policy: RetryPolicy | None
    cancellation_type: Any  # ActivityCancellationType
    headers: Mapping[str, Payload]
    ret_type: type | None = None


@dataclass
class StartChildWorkflowInput:
    """Input for :meth:`WorkflowOutboundInterceptor.start_child_workflow`."""

    workflow: str
    args: Sequence[Any]
    id: str
    task_queue: str | None
    cancellation_type: Any  # ChildWorkflowCancellationType
    parent_close_policy: Any  # ParentClosePolicy
    execution_timeout: timedelta | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    id_reuse_policy: WorkflowIDReusePolicy
    retry_policy: RetryPolicy | None
    memo: Mapping[str, Any] | None
    search_attributes: Any
    headers: Mapping[str, Payload]
    ret_type: type | None = None
    priority: Priority | None = None


@dataclass
class SignalChildWorkflowInput:
    """Input for :meth:`WorkflowOutboundInterceptor.signal_child_workflow`."""

    signal: str
    args: Sequence[Any]
    child_workflow_id: str
    headers: Mapping[str, Payload]


@dataclass
class SignalExternalWorkflowInput:
    """Input for :meth:`WorkflowOutboundInterceptor.signal_external_workflow`."""

    signal: str
    args: Sequence[Any]
    namespace: str
    workflow_id: str
    workflow_run_id: str | None
    headers: Mapping[str, Payload]


@dataclass
class ContinueAsNewInput:
    """Input for :meth:`WorkflowOutboundInterceptor.continue_as_new`."""

    workflow: str | None
    args: Sequence[Any]
    task_queue: str | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    memo: Mapping[str, Any] | None
    headers: Mapping[str, Payload]


class WorkflowInboundInterceptor:
    """Wraps what the worker calls into a workflow. Subclass it, override the hooks you
    need, and call ``self.next``'s (or ``super()``'s) from them.

    Example::

        class Recording(WorkflowInboundInterceptor):
            async def handle_signal(self, input: HandleSignalInput) -> None:
                workflow.logger.info("signal %s", input.signal)
                await super().handle_signal(input)
    """

    def __init__(self, next: WorkflowInboundInterceptor) -> None:
        self.next = next

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        """Called once per run, before anything else, with the outbound chain: wrap it in
        your own outbound interceptor and pass that on (``self.next.init(Mine(outbound))``)."""
        self.next.init(outbound)

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        """The workflow's run method; returns its result."""
        return await self.next.execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        """One signal's handler."""
        return await self.next.handle_signal(input)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        """One query's handler (it must not block: a query only reads state)."""
        return await self.next.handle_query(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        """An update's validator (not run again on replay)."""
        self.next.handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        """An accepted update's handler; returns its result."""
        return await self.next.handle_update_handler(input)


class WorkflowOutboundInterceptor:
    """Wraps what workflow code calls out to. Subclass it, and install it from your inbound
    interceptor's :meth:`WorkflowInboundInterceptor.init`."""

    def __init__(self, next: WorkflowOutboundInterceptor) -> None:
        self.next = next

    def info(self) -> Info:
        """What ``workflow.info()`` returns."""
        return self.next.info()

    def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        """``workflow.start_activity`` / ``execute_activity``."""
        return self.next.start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
        """``workflow.start_local_activity`` / ``execute_local_activity``."""
        return self.next.start_local_activity(input)

    async def start_child_workflow(self, input: StartChildWorkflowInput) -> Any:
        """``workflow.start_child_workflow``; returns the child's handle once started."""
        return await self.next.start_child_workflow(input)

    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        """``ChildWorkflowHandle.signal``."""
        return await self.next.signal_child_workflow(input)

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        """``ExternalWorkflowHandle.signal``."""
        return await self.next.signal_external_workflow(input)

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        """``workflow.continue_as_new``: raises to end the run."""
        self.next.continue_as_new(input)
