"""The end of a client's interceptor chain: what its calls do once every interceptor has
had them. Without interceptors this is the whole chain, so every call takes one path."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from perdure._common import identifiers as ids
from perdure._common.run_ids import new_run_id
from perdure._errors import RPCTimeoutOrCancelledError, WorkflowQueryFailedError
from perdure._store._types import StartWorkflowRequest
from perdure.client._connection import Connection
from perdure.client._description import describe_run
from perdure.client._handle import WorkflowHandle
from perdure.client._history_events import DEFAULT_PAGE_SIZE, WorkflowHistoryEventAsyncIterator
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
)
from perdure.client._interceptor import Interceptor, OutboundInterceptor
from perdure.client._listing import WorkflowExecutionAsyncIterator
from perdure.client._schedule import ClientLike
from perdure.client._schedule_client import create_schedule
from perdure.client._schedule_handle import ScheduleHandle
from perdure.client._update import WorkflowUpdateHandle, send_update
from perdure.common._enums import WorkflowIDReusePolicy
from perdure.common._priority import Priority, priority_dict
from perdure.common._search_attributes import encode_pairs
from perdure.converter._limits import check_payloads
from perdure.converter._visitor import encode_within
from perdure.workflow._definition import WorkflowDefinition

if TYPE_CHECKING:
    from collections.abc import Mapping

    from perdure._common.payload import Payload
    from perdure.client._description import WorkflowExecutionDescription
    from perdure.client._records import WorkflowExecutionCount

log = logging.getLogger("perdure.client")


def _seconds(value: timedelta | None, default: float) -> float:
    return default if value is None else value.total_seconds()


def _opt_seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def build_chain(
    connection: Connection, schedules: ClientLike, interceptors: Sequence[Any]
) -> OutboundInterceptor:
    """The client's outbound chain, the first interceptor outermost (Temporal's order).
    Worker-only interceptors are kept for the client's workers and skipped here."""
    root = ClientRoot(connection, schedules)
    outbound: OutboundInterceptor = root
    for interceptor in reversed(interceptors):
        if isinstance(interceptor, Interceptor):
            outbound = interceptor.intercept_client(outbound)
        elif not hasattr(interceptor, "workflow_interceptor_class"):
            raise TypeError(
                "Client interceptors must subclass perdure.client.Interceptor (or "
                f"perdure.worker.Interceptor, for its workers), got {type(interceptor).__name__}"
            )
    root.chain = outbound
    return outbound


async def start_request(
    client: Connection, start: StartWorkflowInput | UpdateWithStartStartWorkflowInput
) -> StartWorkflowRequest:
    """The request a start sends, its arguments serialized (and checked) up front."""
    workflow = start.workflow
    workflow_type = (
        workflow
        if isinstance(workflow, str)
        else WorkflowDefinition.from_run_fn(workflow).name  # an interceptor's function
    )
    workflow_type = ids.check_workflow_type(workflow_type)
    id = ids.check_workflow_id(start.id)
    task_queue = ids.check_task_queue(start.task_queue)
    start_signal: str | None = None
    start_signal_args: Sequence[Any] = ()
    start_signal_request_id: str | None = None
    priority: Priority | None = None
    if isinstance(start, StartWorkflowInput):
        start_signal, start_signal_args, priority = (
            start.start_signal,
            start.start_signal_args,
            start.priority,
        )
        start_signal_request_id = start.start_signal_request_id
    if start_signal is not None:
        start_signal = ids.check_handler_name(start_signal, "signal", "start_signal")
    payloads = await client.data_converter.encode(list(start.args))
    check_payloads(payloads, f"the arguments of workflow {workflow_type!r}", logger=log)
    signal_payloads = await client.data_converter.encode(list(start_signal_args))
    check_payloads(signal_payloads, f"the arguments of signal {start_signal!r}", logger=log)
    memo_payloads = await client.encode_memo(dict(start.memo) if start.memo is not None else None)
    retry_policy, search_attributes = start.retry_policy, start.search_attributes
    return StartWorkflowRequest(
        namespace=client.namespace,
        workflow_id=id,
        workflow_type=workflow_type,
        task_queue=task_queue,
        input=payloads,
        run_id=new_run_id(),
        task_timeout=_opt_seconds(start.task_timeout) or 10.0,
        execution_timeout=_opt_seconds(start.execution_timeout),
        run_timeout=_opt_seconds(start.run_timeout),
        id_reuse_policy=start.id_reuse_policy,
        id_conflict_policy=start.id_conflict_policy,
        memo=memo_payloads,
        identity=client.identity,
        start_delay=_opt_seconds(start.start_delay) or 0.0,
        retry_policy=retry_policy.to_dict() if retry_policy is not None else None,
        start_signal=start_signal,
        start_signal_input=signal_payloads,
        start_signal_request_id=start_signal_request_id if start_signal is not None else None,
        search_attributes=encode_pairs(search_attributes) if search_attributes else None,
        header=await _header(client, start.headers),
        priority=priority_dict(priority),
    )


async def _header(client: Connection, headers: Mapping[str, Payload]) -> dict[str, Payload] | None:
    if not headers:
        return None
    return await encode_within(client.data_converter._store_codec, dict(headers))


def with_start_input(
    workflow: str | Callable[..., Any], arg: Any, options: dict[str, Any], unset: Any
) -> UpdateWithStartStartWorkflowInput:
    """The start half of an update-with-start, from its ``WithStartWorkflowOperation``."""
    options = dict(options)
    args = options.pop("args", ())
    if arg is not unset:
        if args:
            raise ValueError("Give either arg or args, not both")
        args = (arg,)
    result_type = options.pop("result_type", None)
    if isinstance(workflow, str):
        workflow_type = workflow
    else:
        defn = WorkflowDefinition.from_run_fn(workflow)
        workflow_type = defn.name
        result_type = result_type or defn.ret_type
    call = UpdateWithStartStartWorkflowInput(
        workflow=workflow_type,
        args=list(args),
        id=options.pop("id"),
        task_queue=options.pop("task_queue"),
        execution_timeout=options.pop("execution_timeout", None),
        run_timeout=options.pop("run_timeout", None),
        task_timeout=options.pop("task_timeout", None),
        id_reuse_policy=options.pop("id_reuse_policy", WorkflowIDReusePolicy.ALLOW_DUPLICATE),
        id_conflict_policy=options.pop("id_conflict_policy"),
        retry_policy=options.pop("retry_policy", None),
        memo=options.pop("memo", None),
        search_attributes=options.pop("search_attributes", None),
        start_delay=options.pop("start_delay", None),
        headers={},
        ret_type=result_type,
    )
    if options:
        raise TypeError(f"WithStartWorkflowOperation got unexpected options: {sorted(options)}")
    return call


class ClientRoot(OutboundInterceptor):
    """What each client call does."""

    def __init__(self, connection: Connection, schedules: ClientLike) -> None:
        self._connection = connection
        self._schedules = schedules
        # The whole chain, outermost first, which the handles this makes call (set by
        # build_chain once the interceptors have wrapped this).
        self.chain: OutboundInterceptor = self

    async def _header(self, headers: Mapping[str, Payload]) -> dict[str, Payload] | None:
        return await _header(self._connection, headers)

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any]:
        c = self._connection
        request = await start_request(c, input)
        # A worker of this process may take its first task in the start's commit (the store
        # asks the eager dispatch registered for the queue).
        started = await c.store.start_workflow(request)
        # As in Temporal, the handle follows the latest run of the id (signals, queries,
        # cancel); result() starts from the run it started and follows its successors.
        return WorkflowHandle(
            c,
            self.chain,
            request.workflow_id,
            result_run_id=started.run_id,
            first_execution_run_id=started.run_id,
            result_type=input.ret_type,
        )

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        c = self._connection
        payloads = await c.data_converter.encode(list(input.args))
        check_payloads(payloads, f"the arguments of signal {input.signal!r}", logger=log)
        header = await self._header(input.headers)
        await c.store.signal(
            c.namespace,
            input.id,
            input.run_id,
            input.signal,
            payloads,
            c.identity,
            header,
            input.request_id,
        )

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        c = self._connection
        name = input.query
        rpc_timeout = _seconds(input.rpc_timeout, 30.0)
        payloads = await c.data_converter.encode(list(input.args))
        check_payloads(payloads, f"the arguments of query {name!r}", logger=log)
        ex = await c.settled(input.id, input.run_id, rpc_timeout)
        header = await self._header(input.headers)
        answer = await c.run_query(ex, name, payloads, rpc_timeout, header)
        if answer is None:
            raise RPCTimeoutOrCancelledError(
                f"No worker answered query {name!r} of workflow {input.id!r} within "
                f"{rpc_timeout:g}s: is a worker running for task queue {ex.task_queue!r}?"
            )
        if not answer.ok or answer.result is None:
            raise WorkflowQueryFailedError(answer.error or f"Query {name!r} failed")
        return (await c.data_converter.decode([answer.result], [input.ret_type]))[0]

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        return await send_update(
            self._connection,
            input.id,
            input.run_id,
            input.update,
            input.args,
            id=input.update_id,
            wait_for_stage=input.wait_for_stage,
            result_type=input.ret_type,
            rpc_timeout=None if input.rpc_timeout is None else input.rpc_timeout.total_seconds(),
            header=dict(input.headers) or None,
        )

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        c = self._connection
        start, update = input.start_workflow_input, input.update_workflow_input
        request = await start_request(c, start)
        handle: WorkflowHandle[Any] = WorkflowHandle(
            c, self.chain, request.workflow_id, result_type=start.ret_type
        )
        rpc_timeout = input.rpc_timeout
        update_handle = await send_update(
            c,
            handle.id,
            handle.run_id,
            update.update,
            update.args,
            id=update.update_id,
            wait_for_stage=update.wait_for_stage,
            result_type=update.ret_type,
            rpc_timeout=None if rpc_timeout is None else rpc_timeout.total_seconds(),
            start=request,
            header=dict(update.headers) or None,
            on_started=lambda run_id: _started(handle, run_id),
        )
        input._on_start(handle)
        return update_handle

    async def cancel_workflow(self, input: CancelWorkflowInput) -> None:
        c = self._connection
        await c.store.request_cancel(c.namespace, input.id, input.run_id, input.reason, c.identity)

    async def terminate_workflow(self, input: TerminateWorkflowInput) -> None:
        c = self._connection
        await c.store.terminate(c.namespace, input.id, input.run_id, input.reason or "", c.identity)

    async def describe_workflow(self, input: DescribeWorkflowInput) -> WorkflowExecutionDescription:
        return await describe_run(self._connection, input.id, input.run_id)

    def fetch_workflow_history_events(
        self, input: FetchWorkflowHistoryEventsInput
    ) -> WorkflowHistoryEventAsyncIterator:
        return WorkflowHistoryEventAsyncIterator(
            self._connection,
            input.id,
            input.run_id,
            page_size=input.page_size or DEFAULT_PAGE_SIZE,
            next_page_token=input.next_page_token,
            wait_new_event=input.wait_new_event,
            after_event_id=input.after_event_id,
        )

    def list_workflows(self, input: ListWorkflowsInput) -> WorkflowExecutionAsyncIterator:
        return WorkflowExecutionAsyncIterator(
            self._connection, input.query, input.page_size, input.next_page_token, input.limit
        )

    async def count_workflows(self, input: CountWorkflowsInput) -> WorkflowExecutionCount:
        return await self._connection.count_workflows(input.query, input.max_count)

    async def create_schedule(self, input: CreateScheduleInput) -> ScheduleHandle:
        return await create_schedule(
            self._schedules,
            input.id,
            input.schedule,
            trigger_immediately=input.trigger_immediately,
            backfill=input.backfill,
            memo=dict(input.memo) if input.memo is not None else None,
            search_attributes=input.search_attributes,
        )


def _started(handle: WorkflowHandle[Any], run_id: str) -> None:
    """An update-with-start started the run: its handle's result starts from it."""
    handle.result_run_id = handle.first_execution_run_id = run_id
