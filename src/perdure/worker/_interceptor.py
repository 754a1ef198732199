"""Worker interceptors (Temporal's ``temporalio.worker.Interceptor``), and the ends of the
activity chains: what the last inbound interceptor calls (the activity function) and what
the last outbound one calls (the attempt's own info and heartbeat)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from perdure._common.payload import Payload
from perdure.activity._context import (
    ActivityContext,
    Info,
    bind_sync_activity,
    run_async_activity,
)
from perdure.activity._interceptor import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
)
from perdure.workflow._interceptor import WorkflowInboundInterceptor


@dataclass
class WorkflowInterceptorClassInput:
    """Input for :meth:`Interceptor.workflow_interceptor_class`. Temporal passes the
    functions its sandbox lets through; perdure has no sandbox, so the mapping is only kept
    for the shape."""

    unsafe_extern_functions: MutableMapping[str, Callable[..., Any]] = field(default_factory=dict)


class Interceptor:
    """Intercepts what a worker runs: subclass it and override either method. Give it to
    ``Worker(interceptors=[...])``; one that also subclasses ``perdure.client.Interceptor``
    can be given to ``Client.connect(interceptors=[...])`` instead, and is then used by
    every worker of that client.

    Example::

        class Tagging(Interceptor):
            def intercept_activity(self, next):
                return TaggingActivityInbound(next)

            def workflow_interceptor_class(self, input):
                return TaggingWorkflowInbound
    """

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap the activity inbound chain (called for each attempt); return ``next`` to
        leave it as it is."""
        return next

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        """The class that wraps each workflow run's inbound chain (built once per run, inside
        the deterministic runtime), or ``None``. Called once, when the worker is built."""
        return None


class _ActivityRootInbound(ActivityInboundInterceptor):
    """The end of the inbound chain: the activity function itself."""

    def __init__(self, ctx: ActivityContext, is_async: bool) -> None:
        self._ctx = ctx
        self._is_async = is_async

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        self._ctx.outbound = outbound

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if self._is_async:
            return await input.fn(*input.args)
        # The call runs in a copy of this context: what interceptors set is seen there too.
        call = bind_sync_activity(self._ctx, input.fn, *input.args)
        return await asyncio.get_running_loop().run_in_executor(input.executor, call)


class _ActivityRootOutbound(ActivityOutboundInterceptor):
    def __init__(self, ctx: ActivityContext) -> None:
        self._ctx = ctx

    def info(self) -> Info:
        return self._ctx.info

    def heartbeat(self, *details: Any) -> None:
        self._ctx.heartbeat(details)


def activity_chain(
    interceptors: Sequence[Interceptor], ctx: ActivityContext, is_async: bool
) -> ActivityInboundInterceptor:
    """An attempt's inbound chain, initialized (the first interceptor outermost)."""
    inbound: ActivityInboundInterceptor = _ActivityRootInbound(ctx, is_async)
    for interceptor in reversed(interceptors):
        inbound = interceptor.intercept_activity(inbound)
    inbound.init(_ActivityRootOutbound(ctx))
    return inbound


def worker_interceptors(
    of_client: Sequence[object], of_worker: Sequence[object]
) -> list[Interceptor]:
    """A worker's interceptors: its client's worker interceptors first, then its own
    (Temporal's order)."""
    chosen = [i for i in of_client if isinstance(i, Interceptor)]
    for interceptor in of_worker:
        if not isinstance(interceptor, Interceptor):
            raise TypeError(
                f"Worker interceptors must subclass perdure.worker.Interceptor, got "
                f"{type(interceptor).__name__}"
            )
        chosen.append(interceptor)
    return chosen


def workflow_classes(
    interceptors: Sequence[Interceptor],
) -> list[type[WorkflowInboundInterceptor]]:
    """The workflow inbound classes of a worker's interceptors, in order."""
    classes = []
    for interceptor in interceptors:
        cls = interceptor.workflow_interceptor_class(WorkflowInterceptorClassInput())
        if cls is not None:
            classes.append(cls)
    return classes


async def execute_activity(
    interceptors: Sequence[Interceptor],
    ctx: ActivityContext,
    fn: Callable[..., Any],
    args: Sequence[Any],
    *,
    is_async: bool,
    executor: Any,
    headers: Mapping[str, Payload],
) -> Any:
    """Run one attempt through the interceptors, in the activity's context."""
    inbound = activity_chain(interceptors, ctx, is_async)
    call = ExecuteActivityInput(fn, list(args), executor, dict(headers))
    return await run_async_activity(ctx, inbound.execute_activity, call)
