"""Which handler takes a signal, query or update: the one registered under its name, else
the workflow's dynamic one, which gets the name and the arguments unconverted. Queries also
have the built-in ones (``_builtin_queries``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from perdure._common.payload import Payload, RawValue
from perdure._runtime import _builtin_queries as builtin
from perdure._runtime._loop import WorkflowEventLoop
from perdure.converter import PayloadConverter
from perdure.workflow._definition import (
    HandlerDefinition,
    WorkflowDefinition,
    _arg_and_return_types,
)


def dynamic_args(name: str, payloads: Sequence[Payload], converter: PayloadConverter) -> list[Any]:
    """A dynamic handler's arguments: the name it was sent by, and the raw values."""
    return [name, converter.from_payloads(payloads, [RawValue] * len(payloads))]


def arg_types(handler: Callable[..., Any]) -> list[Any]:
    """The parameter types of a handler registered at run time (a function or a bound
    method), read from its annotations as a decorated method's are."""
    return _arg_and_return_types(handler, skip_self=False)[0]


def bound(obj: Any, handler: HandlerDefinition | None) -> Callable[..., Any] | None:
    """A class's handler, bound to the workflow object."""
    return None if handler is None else getattr(obj, handler.fn.__name__)


@dataclass(frozen=True)
class QueryCall:
    """A query's handler with its arguments; ``user_code`` unless it is a built-in one."""

    fn: Callable[..., Any]
    args: list[Any]
    user_code: bool = True


class Queries:
    """The query handlers of one workflow: its class's, those registered at run time, its
    dynamic one, and the built-in ones."""

    def __init__(
        self,
        definition: WorkflowDefinition,
        converter: PayloadConverter,
        loop: WorkflowEventLoop,
        *,
        workflow_type: str,
        workflow: Callable[[], Any],
        signals: Callable[[], Iterable[str]],
    ) -> None:
        self._definition = definition
        self._converter = converter
        self._loop = loop
        self._workflow_type = workflow_type
        self._workflow = workflow  # the workflow object, once made
        self._signals = signals
        self._handlers: dict[str, HandlerDefinition | Callable[..., Any]] = dict(definition.queries)

    def handler(self, name: str) -> Callable[..., Any] | None:
        """The handler registered for ``name``, bound (not the dynamic or a built-in one)."""
        handler = self._handlers.get(name)
        if isinstance(handler, HandlerDefinition):
            return bound(self._workflow(), handler)
        return handler

    def set_handler(self, name: str, handler: Callable[..., Any] | None) -> None:
        if handler is None:
            self._handlers.pop(name, None)
        else:
            self._handlers[name] = handler

    def find(self, name: str, payloads: Sequence[Payload]) -> QueryCall:
        """The call answering query ``name``.

        Raises:
            KeyError: no handler takes it.
        """
        handler = self._handlers.get(name)
        if isinstance(handler, HandlerDefinition):
            fn = getattr(self._workflow(), handler.fn.__name__)
            return QueryCall(fn, self._converter.from_payloads(payloads, handler.arg_types))
        if handler is not None:
            return QueryCall(handler, self._converter.from_payloads(payloads, arg_types(handler)))
        if name == builtin.STACK_TRACE:
            return QueryCall(builtin.stack_trace, [self._loop.pending_tasks()], user_code=False)
        if name in (builtin.METADATA, builtin.TEMPORAL_METADATA):
            return QueryCall(self.metadata, [], user_code=False)
        dynamic = bound(self._workflow(), self._definition.dynamic_query)
        if dynamic is not None:
            return QueryCall(dynamic, dynamic_args(name, payloads, self._converter))
        known = ", ".join(sorted([*self._handlers, *builtin.BUILT_IN]))
        raise KeyError(
            f"Workflow {self._workflow_type} has no query {name!r} (known queries: {known})"
        )

    def metadata(self) -> builtin.WorkflowMetadata:
        return builtin.workflow_metadata(
            self._definition, self._workflow_type, queries=self._handlers, signals=self._signals()
        )
