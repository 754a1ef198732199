"""The ``*Input`` dataclasses of the client's interceptor chain (Temporal's shapes): one per
call of ``OutboundInterceptor``. As in Temporal they are plain dataclasses: an interceptor may
set ``input.headers = {**input.headers, key: payload}`` and call on."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from perdure._common.payload import Payload
from perdure.common._enums import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from perdure.common._retry import RetryPolicy

if TYPE_CHECKING:
    from perdure.client._schedule import Schedule, ScheduleBackfill
    from perdure.client._update import WorkflowUpdateStage
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
    # The start signal's idempotency key (see SignalWorkflowInput.request_id).
    start_signal_request_id: str | None = None


@dataclass
class SignalWorkflowInput:
    """Input for :meth:`OutboundInterceptor.signal_workflow`."""

    id: str
    run_id: str | None
    signal: str
    args: Sequence[Any]
    headers: Mapping[str, Payload]
    # The signal's idempotency key: a signal whose key the workflow id already took is
    # accepted and records nothing. None: no deduplication (an interceptor that sends a
    # signal again sets one first).
    request_id: str | None = None


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
    _on_start: Callable[[Any], None]


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
