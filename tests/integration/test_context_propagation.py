"""The pattern of Temporal's ``context_propagation`` sample: one interceptor, given to the
client only, carries a context variable in a header from the caller to the workflow, its
signal, query and update handlers, its activities (sync ones too), and a child workflow."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, Protocol

from perdure import Worker, activity, client, worker, workflow
from perdure.client import Client
from perdure.converter import DataConverter, Payload, PayloadConverter
from perdure.testing import WorkflowEnvironment

tenant: ContextVar[str | None] = ContextVar("tenant", default=None)
HEADER = "x-tenant"


class _HasHeaders(Protocol):
    headers: Mapping[str, Payload]


def _put(input: _HasHeaders, converter: PayloadConverter) -> None:
    value = tenant.get()
    if value is not None:
        input.headers = {**input.headers, HEADER: converter.to_payload(value)}


@contextlib.contextmanager
def _taken(input: _HasHeaders, converter: PayloadConverter) -> Iterator[None]:
    payload = input.headers.get(HEADER)
    token = tenant.set(converter.from_payload(payload, str)) if payload else None
    try:
        yield
    finally:
        if token is not None:
            tenant.reset(token)


class TenantInterceptor(client.Interceptor, worker.Interceptor):
    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _ClientOut(next)

    def intercept_activity(
        self, next: worker.ActivityInboundInterceptor
    ) -> worker.ActivityInboundInterceptor:
        return _ActivityIn(next)

    def workflow_interceptor_class(
        self, input: worker.WorkflowInterceptorClassInput
    ) -> type[worker.WorkflowInboundInterceptor]:
        return _WorkflowIn


def _client_converter() -> PayloadConverter:
    return DataConverter.default.payload_converter


class _ClientOut(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> Any:
        _put(input, _client_converter())
        return await super().start_workflow(input)

    async def signal_workflow(self, input: client.SignalWorkflowInput) -> None:
        _put(input, _client_converter())
        await super().signal_workflow(input)

    async def query_workflow(self, input: client.QueryWorkflowInput) -> Any:
        _put(input, _client_converter())
        return await super().query_workflow(input)

    async def start_workflow_update(self, input: client.StartWorkflowUpdateInput) -> Any:
        _put(input, _client_converter())
        return await super().start_workflow_update(input)


class _ActivityIn(worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        with _taken(input, activity.payload_converter()):
            return await super().execute_activity(input)


class _WorkflowIn(worker.WorkflowInboundInterceptor):
    def init(self, outbound: worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOut(outbound))

    async def execute_workflow(self, input: worker.ExecuteWorkflowInput) -> Any:
        with _taken(input, workflow.payload_converter()):
            return await super().execute_workflow(input)

    async def handle_signal(self, input: worker.HandleSignalInput) -> None:
        with _taken(input, workflow.payload_converter()):
            await super().handle_signal(input)

    async def handle_query(self, input: worker.HandleQueryInput) -> Any:
        with _taken(input, workflow.payload_converter()):
            return await super().handle_query(input)

    def handle_update_validator(self, input: worker.HandleUpdateInput) -> None:
        with _taken(input, workflow.payload_converter()):
            super().handle_update_validator(input)

    async def handle_update_handler(self, input: worker.HandleUpdateInput) -> Any:
        with _taken(input, workflow.payload_converter()):
            return await super().handle_update_handler(input)


class _WorkflowOut(worker.WorkflowOutboundInterceptor):
    def start_activity(self, input: worker.StartActivityInput) -> Any:
        _put(input, workflow.payload_converter())
        return super().start_activity(input)

    async def start_child_workflow(self, input: worker.StartChildWorkflowInput) -> Any:
        _put(input, workflow.payload_converter())
        return await super().start_child_workflow(input)


@activity.defn
async def async_tenant() -> str | None:
    return tenant.get()


@activity.defn
def sync_tenant() -> str | None:  # runs in a worker thread
    return tenant.get()


@workflow.defn
class TenantChild:
    @workflow.run
    async def run(self) -> str | None:
        return tenant.get()


@workflow.defn
class TenantWorkflow:
    def __init__(self) -> None:
        self.seen: dict[str, str | None] = {}

    @workflow.run
    async def run(self) -> dict[str, str | None]:
        self.seen["run"] = tenant.get()
        await workflow.wait_condition(lambda: "signal" in self.seen)
        timeout = timedelta(seconds=10)
        self.seen["async activity"] = await workflow.execute_activity(
            async_tenant, start_to_close_timeout=timeout
        )
        self.seen["sync activity"] = await workflow.execute_activity(
            sync_tenant, start_to_close_timeout=timeout
        )
        self.seen["child"] = await workflow.execute_child_workflow(TenantChild.run)
        return self.seen

    @workflow.signal
    def done(self) -> None:
        self.seen["signal"] = tenant.get()

    @workflow.query
    def whose(self) -> str | None:
        return tenant.get()

    @workflow.update
    def mark(self) -> str | None:
        self.seen["update"] = tenant.get()
        return self.seen["update"]

    @mark.validator
    def _only_for_tenants(self) -> None:
        if tenant.get() is None:
            raise ValueError("no tenant")


async def test_a_context_variable_travels_with_every_call(env: WorkflowEnvironment) -> None:
    config = env.client.config()
    connected = Client(**{**config, "interceptors": [TenantInterceptor()]})
    async with Worker(
        connected,  # the client's interceptor is the worker's too
        task_queue="q",
        workflows=[TenantWorkflow, TenantChild],
        activities=[async_tenant, sync_tenant],
    ):
        token = tenant.set("acme")
        try:
            handle = await connected.start_workflow(TenantWorkflow.run, id="t", task_queue="q")
            assert await handle.execute_update(TenantWorkflow.mark) == "acme"
            tenant.set("query-caller")
            assert await handle.query(TenantWorkflow.whose) == "query-caller"
            tenant.set("acme")
            await handle.signal(TenantWorkflow.done)
        finally:
            tenant.reset(token)
        result = await handle.result()
    assert result == {
        "run": "acme",
        "update": "acme",
        "signal": "acme",
        "async activity": "acme",
        "sync activity": "acme",
        "child": "acme",
    }
    # Nothing leaked into the caller's context.
    assert tenant.get() is None
