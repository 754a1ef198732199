"""Workflow definitions: what ``@workflow.defn`` learns about a class."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Protocol, TypeVar, cast, get_type_hints, overload

from perdure._common.identifiers import check_handler_name

ClassType = TypeVar("ClassType", bound=type)
CallableType = TypeVar("CallableType", bound=Callable[..., Any])
R = TypeVar("R")

_RUN_ATTR = "__perdure_workflow_run__"
_INIT_ATTR = "__perdure_workflow_init__"
_SIGNAL_ATTR = "__perdure_signal_name__"
_QUERY_ATTR = "__perdure_query_name__"
_UPDATE_ATTR = "__perdure_update_name__"
_VALIDATOR_ATTR = "__perdure_update_validator__"
_DEFN_ATTR = "__perdure_workflow_definition__"


@dataclass(frozen=True)
class HandlerDefinition:
    """A signal or query handler: its public name, the method, and its argument types."""

    name: str
    fn: Callable[..., Any]
    arg_types: list[Any]
    ret_type: Any
    is_async: bool
    validator: Callable[..., Any] | None = None


@dataclass(frozen=True)
class WorkflowDefinition:
    """Everything the engine needs to run a workflow class."""

    cls: type
    name: str
    run_fn: Callable[..., Any]
    arg_types: list[Any]
    ret_type: Any
    init_takes_args: bool
    signals: dict[str, HandlerDefinition] = field(default_factory=dict)
    queries: dict[str, HandlerDefinition] = field(default_factory=dict)
    updates: dict[str, HandlerDefinition] = field(default_factory=dict)
    failure_exception_types: tuple[type[BaseException], ...] = ()

    @staticmethod
    def from_class(cls: type) -> WorkflowDefinition:
        defn = cls.__dict__.get(_DEFN_ATTR)
        if not isinstance(defn, WorkflowDefinition):
            raise TypeError(
                f"{cls.__qualname__} is not a workflow: decorate it with @workflow.defn"
            )
        return defn

    @staticmethod
    def from_run_fn(fn: Callable[..., Any]) -> WorkflowDefinition:
        defn = getattr(fn, _DEFN_ATTR, None)
        if not isinstance(defn, WorkflowDefinition):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is not the @workflow.run method of a "
                "@workflow.defn class; pass MyWorkflow.run or the workflow type's name"
            )
        return defn


def _arg_and_return_types(fn: Callable[..., Any], skip_self: bool) -> tuple[list[Any], Any]:
    try:
        hints = get_type_hints(fn)
    except Exception:  # unresolvable annotations: fall back to untyped decoding
        hints = {}
    params = list(inspect.signature(fn).parameters.values())
    if skip_self and params:
        params = params[1:]
    arg_types = [
        hints.get(p.name) for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return arg_types, hints.get("return")


def _handler(fn: Callable[..., Any], name: str) -> HandlerDefinition:
    arg_types, ret = _arg_and_return_types(fn, skip_self=True)
    return HandlerDefinition(
        name=name,
        fn=fn,
        arg_types=arg_types,
        ret_type=ret,
        is_async=inspect.iscoroutinefunction(fn),
        validator=getattr(fn, _VALIDATOR_ATTR, None),
    )


@overload
def defn(cls: ClassType) -> ClassType: ...


@overload
def defn(
    *,
    name: str | None = None,
    failure_exception_types: tuple[type[BaseException], ...] = (),
) -> Callable[[ClassType], ClassType]: ...


def defn(
    cls: ClassType | None = None,
    *,
    name: str | None = None,
    failure_exception_types: tuple[type[BaseException], ...] = (),
) -> ClassType | Callable[[ClassType], ClassType]:
    """Declare a class as a workflow. Exactly one ``async`` method is marked ``@workflow.run``.

    Args:
        name: the workflow type's name; the class name by default.
        failure_exception_types: exception types that fail the workflow rather than only
            its task (``ApplicationError`` and the other ``FailureError`` always do).

    Example::

        @workflow.defn
        class Greeting:
            @workflow.run
            async def run(self, name: str) -> str:
                return await workflow.execute_activity(
                    say_hello, name, start_to_close_timeout=timedelta(seconds=5))
    """

    def decorate(cls: ClassType) -> ClassType:
        run_fns = []
        signals: dict[str, HandlerDefinition] = {}
        queries: dict[str, HandlerDefinition] = {}
        updates: dict[str, HandlerDefinition] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                fn = attr
                if getattr(fn, _RUN_ATTR, False) and klass is cls:
                    run_fns.append(fn)
                signal_name = getattr(fn, _SIGNAL_ATTR, None)
                if signal_name is not None:
                    signals[signal_name] = _handler(fn, signal_name)
                query_name = getattr(fn, _QUERY_ATTR, None)
                if query_name is not None:
                    queries[query_name] = _handler(fn, query_name)
                update_name = getattr(fn, _UPDATE_ATTR, None)
                if update_name is not None:
                    updates[update_name] = _handler(fn, update_name)
        if not run_fns:
            inherited = [
                attr
                for klass in cls.__mro__[1:]
                for attr in vars(klass).values()
                if getattr(attr, _RUN_ATTR, False)
            ]
            run_fns = inherited[:1]
        if len(run_fns) != 1:
            raise TypeError(
                f"Workflow {cls.__qualname__} must have exactly one @workflow.run method, "
                f"found {len(run_fns)}"
            )
        run_fn = run_fns[0]
        arg_types, ret_type = _arg_and_return_types(run_fn, skip_self=True)
        # Inherited like any method, as in Temporal: a base class's @workflow.init __init__
        # takes the arguments of its subclasses' runs too.
        init_takes_args = bool(getattr(getattr(cls, "__init__", None), _INIT_ATTR, False))
        definition = WorkflowDefinition(
            cls=cls,
            name=name or cls.__name__,
            run_fn=run_fn,
            arg_types=arg_types,
            ret_type=ret_type,
            init_takes_args=init_takes_args,
            signals=signals,
            queries=queries,
            updates=updates,
            failure_exception_types=tuple(failure_exception_types),
        )
        setattr(cls, _DEFN_ATTR, definition)
        setattr(run_fn, _DEFN_ATTR, definition)
        return cls

    if cls is not None:
        return decorate(cls)
    return decorate


def run(fn: CallableType) -> CallableType:
    """Mark the workflow's entry point: an ``async`` method whose return value is the result."""
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"@workflow.run method {fn.__qualname__} must be 'async def'")
    setattr(fn, _RUN_ATTR, True)
    return fn


def init(fn: CallableType) -> CallableType:
    """Mark ``__init__`` as taking the workflow's arguments, so state is ready before any
    signal handler or the run method runs."""
    if fn.__name__ != "__init__":
        raise TypeError("@workflow.init goes on __init__")
    setattr(fn, _INIT_ATTR, True)
    return fn


@overload
def signal(fn: CallableType) -> CallableType: ...


@overload
def signal(*, name: str | None = None) -> Callable[[CallableType], CallableType]: ...


def signal(
    fn: CallableType | None = None, *, name: str | None = None
) -> CallableType | Callable[[CallableType], CallableType]:
    """Mark a method as a signal handler (sync or async); signals are delivered in order,
    exactly once, and recorded in history."""

    def decorate(fn: CallableType) -> CallableType:
        setattr(fn, _SIGNAL_ATTR, name or fn.__name__)
        return fn

    return decorate(fn) if fn is not None else decorate


@overload
def query(fn: CallableType) -> CallableType: ...


@overload
def query(*, name: str | None = None) -> Callable[[CallableType], CallableType]: ...


def query(
    fn: CallableType | None = None, *, name: str | None = None
) -> CallableType | Callable[[CallableType], CallableType]:
    """Mark a (non-async) method as a query handler: it reads state and never changes history."""

    def decorate(fn: CallableType) -> CallableType:
        if inspect.iscoroutinefunction(fn):
            raise TypeError(f"@workflow.query method {fn.__qualname__} must not be async")
        setattr(fn, _QUERY_ATTR, name or fn.__name__)
        return fn

    return decorate(fn) if fn is not None else decorate


P = ParamSpec("P")
R_co = TypeVar("R_co", covariant=True)


class UpdateMethod(Protocol[P, R_co]):
    """What ``@workflow.update`` makes of a method: still callable, plus ``.validator`` to
    declare the validator, typed with the handler's own parameters."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def validator(self, fn: Callable[P, None]) -> Callable[P, None]: ...


@overload
def update(fn: Callable[P, R]) -> UpdateMethod[P, R]: ...


@overload
def update(*, name: str | None = None) -> Callable[[Callable[P, R]], UpdateMethod[P, R]]: ...


def update(
    fn: Callable[P, R] | None = None, *, name: str | None = None
) -> UpdateMethod[P, R] | Callable[[Callable[P, R]], UpdateMethod[P, R]]:
    """Mark a method (sync or async) as an update handler: a request that changes the
    workflow and returns a result to the caller, recorded in history.

    A validator, declared with ``@my_update.validator``, runs before the update is accepted;
    if it raises, the update is rejected and leaves no trace in history.

    Example::

        @workflow.update
        async def withdraw(self, amount: int) -> int:
            self.balance -= amount
            return self.balance

        @withdraw.validator
        def check_withdraw(self, amount: int) -> None:
            if amount > self.balance:
                raise ValueError("insufficient funds")
    """

    def decorate(fn: Callable[P, R]) -> UpdateMethod[P, R]:
        setattr(fn, _UPDATE_ATTR, name or fn.__name__)

        def validator(vfn: Callable[P, None]) -> Callable[P, None]:
            if inspect.iscoroutinefunction(vfn):
                raise TypeError(f"Update validator {vfn.__qualname__} must not be async")
            setattr(fn, _VALIDATOR_ATTR, vfn)
            return vfn

        setattr(fn, "validator", validator)  # noqa: B010 - a function attribute, as Temporal
        return cast(UpdateMethod[P, R], fn)

    return decorate(fn) if fn is not None else decorate


def handler_name(fn: Any, kind: str) -> str:
    """The registered name of a signal, query or update given as a method or a string.

    Raises:
        InvalidArgumentError: the name is not a string, is empty or too long, or holds NUL.
    """
    if isinstance(fn, str) or not callable(fn):
        return check_handler_name(fn, kind)
    attr = {"signal": _SIGNAL_ATTR, "query": _QUERY_ATTR, "update": _UPDATE_ATTR}[kind]
    name = getattr(fn, attr, None)
    if name is None:
        raise TypeError(f"{getattr(fn, '__qualname__', fn)!r} is not a @workflow.{kind} method")
    return check_handler_name(name, kind)
