"""The ends of a workflow's interceptor chains: what the last inbound interceptor calls (the
workflow's own run method and handlers) and what the last outbound one calls (the runtime's
activities, children and commands), and the building of each call's ``*Input``.

Without interceptors the chains are just these two objects, so every call takes one path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, NoReturn, Protocol

from perdure._common.payload import Payload
from perdure._runtime._activities import Activities
from perdure._runtime._children import Children
from perdure.common._priority import priority_dict
from perdure.common._retry import RetryPolicy
from perdure.workflow._errors import ContinueAsNewError
from perdure.workflow._info import (
    ActivityHandle,
    Info,
)
from perdure.workflow._interceptor import (
    ContinueAsNewInput,
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowOutboundInterceptor,
)


class RunningWorkflow(Protocol):
    """What the ends of the chains need of the running workflow (``_instance``, through
    ``_calls.InterceptedCalls``)."""

    activities: Activities
    children: Children
    outbound: WorkflowOutboundInterceptor

    def own_info(self) -> Info: ...

    def signal_handler(self, name: str) -> Callable[..., Any] | None: ...

    def query_fn(self, name: str) -> Callable[..., Any]: ...

    def update_validator(self, name: str) -> Callable[..., Any] | None: ...

    def update_method(self, name: str) -> Callable[..., Any]: ...


def header(headers: Mapping[str, Payload]) -> dict[str, Payload] | None:
    """The headers of a call as a command records them (``None`` when there are none)."""
    return dict(headers) if headers else None


# What an activity without a retry policy retries with (Temporal's default).
_DEFAULT_RETRY = RetryPolicy().to_dict()


def retry_dict(policy: RetryPolicy | None) -> dict[str, Any]:
    """A retry policy as a command records it (``None``: the default)."""
    return policy.to_dict() if policy is not None else dict(_DEFAULT_RETRY)


def _td(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def _s(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


class RootInbound(WorkflowInboundInterceptor):
    """The end of the inbound chain: the workflow's own code."""

    def __init__(self, instance: RunningWorkflow) -> None:
        self._instance = instance

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        self._instance.outbound = outbound

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        return await input.run_fn(*input.args)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        handler = self._instance.signal_handler(input.signal)
        if handler is None:
            return  # removed since it was delivered
        result = handler(*input.args)
        if asyncio.iscoroutine(result):
            await result

    async def handle_query(self, input: HandleQueryInput) -> Any:
        return self._instance.query_fn(input.query)(*input.args)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        validator = self._instance.update_validator(input.update)
        if validator is not None:
            validator(*input.args)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        result = self._instance.update_method(input.update)(*input.args)
        if asyncio.iscoroutine(result):
            result = await result
        return result


class RootOutbound(WorkflowOutboundInterceptor):
    """The end of the outbound chain: the runtime's activities, children and commands."""

    def __init__(self, instance: RunningWorkflow) -> None:
        self._instance = instance

    def info(self) -> Info:
        return self._instance.own_info()

    def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        return self._instance.activities.start(
            input.activity,
            input.args,
            task_queue=input.task_queue,
            schedule_to_close_timeout=_s(input.schedule_to_close_timeout),
            schedule_to_start_timeout=_s(input.schedule_to_start_timeout),
            start_to_close_timeout=_s(input.start_to_close_timeout),
            heartbeat_timeout=_s(input.heartbeat_timeout),
            retry_policy=retry_dict(input.retry_policy),
            cancellation_type=int(input.cancellation_type),
            activity_id=input.activity_id,
            result_type=input.ret_type,
            header=header(input.headers),
            priority=priority_dict(input.priority),
            concurrency_key=input.concurrency_key,
        )

    def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
        return self._instance.activities.start_local(
            input.activity,
            input.args,
            schedule_to_close_timeout=_s(input.schedule_to_close_timeout),
            start_to_close_timeout=_s(input.start_to_close_timeout),
            retry_policy=retry_dict(input.retry_policy),
            cancellation_type=int(input.cancellation_type),
            activity_id=input.activity_id,
            result_type=input.ret_type,
            header=header(input.headers),
        )

    async def start_child_workflow(self, input: StartChildWorkflowInput) -> Any:
        return await self._instance.children.start_child_workflow(input)

    async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
        await self._instance.children.signal_external(
            input.child_workflow_id, None, input.signal, input.args, header(input.headers)
        )

    async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
        await self._instance.children.signal_external(
            input.workflow_id,
            input.workflow_run_id,
            input.signal,
            input.args,
            header(input.headers),
        )

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        raise ContinueAsNewError(
            input.args,
            workflow_type=input.workflow,
            task_queue=input.task_queue,
            run_timeout=_s(input.run_timeout),
            task_timeout=_s(input.task_timeout),
            memo=dict(input.memo) if input.memo is not None else None,
            header=header(input.headers),
        )


def chain(
    instance: RunningWorkflow, classes: Sequence[type[WorkflowInboundInterceptor]]
) -> WorkflowInboundInterceptor:
    """The inbound chain, the first class outermost (as Temporal orders them)."""
    inbound: WorkflowInboundInterceptor = RootInbound(instance)
    for cls in reversed(classes):
        inbound = cls(inbound)
    return inbound


def run_sync(coro: Awaitable[Any], what: str) -> Any:
    """Run a coroutine that must not wait on anything (a query through its interceptors):
    a query answers from the state as it is, outside any activation."""
    it = coro.__await__()
    try:
        it.send(None)
    except StopIteration as done:
        return done.value
    it.close()
    raise TypeError(f"{what} must not wait: a query only reads the workflow's state")
