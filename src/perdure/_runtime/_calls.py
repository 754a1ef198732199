"""The calls that go through a workflow's interceptor chains, as the running workflow
(``_instance.WorkflowInstance``, which mixes this class in) makes them: the authoring API's
outbound calls become their ``*Input`` and enter the outbound chain; the ends of the chains
(``_intercept``) find the workflow's handlers here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from perdure._runtime._activities import Activities
from perdure._runtime._children import Children
from perdure._runtime._intercept import retry_dict
from perdure.common._priority import Priority
from perdure.workflow._definition import WorkflowDefinition
from perdure.workflow._info import (
    ActivityCancellationType,
    Info,
)
from perdure.workflow._interceptor import (
    ContinueAsNewInput,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    WorkflowOutboundInterceptor,
)


class InterceptedCalls:
    """What of a running workflow passes through its interceptors."""

    outbound: WorkflowOutboundInterceptor
    activities: Activities
    children: Children
    definition: WorkflowDefinition
    _info: Info
    _obj: Any
    _signal_handlers: dict[str, Callable[..., Any]]
    _dynamic_signal: Callable[..., Any] | None
    _query_fn: Callable[..., Any] | None
    _intercepted: bool  # the worker has workflow interceptors

    def own_info(self) -> Info:
        return self._info

    def signal_handler(self, name: str) -> Callable[..., Any] | None:
        return self._signal_handlers.get(name) or self._dynamic_signal

    def update_validator(self, name: str) -> Callable[..., Any] | None:
        handler = self.definition.updates.get(name) or self.definition.dynamic_update
        if handler is None or handler.validator is None:
            return None
        validator: Callable[..., Any] = handler.validator.__get__(self._obj)
        return validator

    def update_method(self, name: str) -> Callable[..., Any]:
        handler = self.definition.updates.get(name) or self.definition.dynamic_update
        if handler is None:
            raise KeyError(name)
        method: Callable[..., Any] = getattr(self._obj, handler.fn.__name__)
        return method

    def query_fn(self, name: str) -> Callable[..., Any]:
        if self._query_fn is None:
            raise RuntimeError(f"No query {name!r} is being answered")
        return self._query_fn

    def _signal_child(self, workflow_id: str, name: str, args: list[Any]) -> Awaitable[None]:
        return self.outbound.signal_child_workflow(
            SignalChildWorkflowInput(name, list(args), workflow_id, {})
        )

    def info(self) -> Info:
        return self.outbound.info()

    def start_activity(self, activity_type: str, args: Sequence[Any], **options: Any) -> Any:
        if not self._intercepted:  # the hot path: no *Input to build for nobody
            options["retry_policy"] = retry_dict(options["retry_policy"])
            return self.activities.start(activity_type, args, **options)
        return self.outbound.start_activity(start_activity_input(activity_type, args, options))

    def start_local_activity(self, activity_type: str, args: Sequence[Any], **options: Any) -> Any:
        if not self._intercepted:
            options["retry_policy"] = retry_dict(options["retry_policy"])
            return self.activities.start_local(activity_type, args, **options)
        call = start_local_activity_input(activity_type, args, options)
        return self.outbound.start_local_activity(call)

    def start_child_workflow(self, call: StartChildWorkflowInput) -> Awaitable[Any]:
        return self.outbound.start_child_workflow(call)

    def signal_external(
        self, workflow_id: str, run_id: str | None, name: str, args: Sequence[Any]
    ) -> Awaitable[None]:
        call = SignalExternalWorkflowInput(
            name, list(args), self._info.namespace, workflow_id, run_id, {}
        )
        return self.outbound.signal_external_workflow(call)

    def continue_as_new(self, call: ContinueAsNewInput) -> None:
        self.outbound.continue_as_new(call)


# Enum members by value: a dict lookup, where calling the enum costs a microsecond per call.
_CANCELLATION = {int(t): t for t in ActivityCancellationType}


def _td(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def _priority(stored: dict[str, Any] | None) -> Priority | None:
    return None if stored is None else Priority.from_dict(stored)


# -- the inputs of the outbound calls, from what the authoring API hands the runtime ----------
def start_activity_input(
    activity_type: str, args: Sequence[Any], options: dict[str, Any]
) -> StartActivityInput:
    return StartActivityInput(
        activity=activity_type,
        args=list(args),
        activity_id=options.get("activity_id"),
        task_queue=options.get("task_queue"),
        schedule_to_close_timeout=_td(options.get("schedule_to_close_timeout")),
        schedule_to_start_timeout=_td(options.get("schedule_to_start_timeout")),
        start_to_close_timeout=_td(options.get("start_to_close_timeout")),
        heartbeat_timeout=_td(options.get("heartbeat_timeout")),
        retry_policy=options.get("retry_policy"),
        cancellation_type=_CANCELLATION[options.get("cancellation_type", 0)],
        headers={},
        ret_type=options.get("result_type"),
        priority=_priority(options.get("priority")),
        concurrency_key=options.get("concurrency_key"),
    )


def start_local_activity_input(
    activity_type: str, args: Sequence[Any], options: dict[str, Any]
) -> StartLocalActivityInput:
    return StartLocalActivityInput(
        activity=activity_type,
        args=list(args),
        activity_id=options.get("activity_id"),
        schedule_to_close_timeout=_td(options.get("schedule_to_close_timeout")),
        start_to_close_timeout=_td(options.get("start_to_close_timeout")),
        retry_policy=options.get("retry_policy"),
        cancellation_type=_CANCELLATION[options.get("cancellation_type", 0)],
        headers={},
        ret_type=options.get("result_type"),
    )
