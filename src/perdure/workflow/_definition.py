"""Workflow definitions: what ``@workflow.defn`` learns about a class."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
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
_DESCRIPTION_ATTR = "__perdure_handler_description__"
# The name attribute of a dynamic signal, query or update handler: no registered name can be
# empty (an empty name= falls back to the method's name).
_DYNAMIC = ""


@dataclass(frozen=True)
class HandlerDefinition:
    """A signal, query or update handler: its public name (empty for a dynamic one), the
    method, and its argument types."""

    name: str
    fn: Callable[..., Any]
    arg_types: list[Any]
    ret_type: Any
    is_async: bool
    validator: Callable[..., Any] | None = None
    description: str | None = None


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
    # A dynamic workflow runs every type no other workflow of its worker is registered as;
    # its run method (and a @workflow.init __init__) takes one Sequence[RawValue].
    dynamic: bool = False
    sandboxed: bool = True
    # Handlers of the signals, queries and updates no named handler takes: (name, args).
    dynamic_signal: HandlerDefinition | None = None
    dynamic_query: HandlerDefinition | None = None
    dynamic_update: HandlerDefinition | None = None

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
        """The definition of the workflow to start (or signal, or query) by its run method.

        Raises:
            TypeError: not a run method, or the run method of a dynamic workflow (which has
                no type of its own: name the type with a string).
        """
        defn = getattr(fn, _DEFN_ATTR, None)
        if not isinstance(defn, WorkflowDefinition):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is not the @workflow.run method of a "
                "@workflow.defn class; pass MyWorkflow.run or the workflow type's name"
            )
        if defn.dynamic:
            raise TypeError(
                f"{defn.cls.__qualname__} is a dynamic workflow: it has no workflow type of its "
                "own, so it cannot be named by its run method; pass the workflow type's name "
                "(a string) and a worker registering it runs that type"
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
        description=getattr(fn, _DESCRIPTION_ATTR, None),
    )


def _positional_count(fn: Callable[..., Any]) -> int:
    """How many positional parameters a method takes after ``self``, or -1 if it takes
    ``*args`` or a keyword-only parameter without a default."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    if any(
        p.kind is p.VAR_POSITIONAL or (p.kind is p.KEYWORD_ONLY and p.default is p.empty)
        for p in params
    ):
        return -1
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _mark_handler(
    fn: Callable[..., Any],
    attr: str,
    kind: str,
    name: str | None,
    dynamic: bool,
    description: str | None,
) -> None:
    if dynamic:
        if name is not None:
            raise TypeError(f"@workflow.{kind} takes name= or dynamic=True, not both")
        if _positional_count(fn) != 2:
            raise TypeError(
                f"Dynamic {kind} handler {fn.__qualname__} must take (self, name: str, "
                "args: Sequence[RawValue]): the name it was sent by and its raw arguments"
            )
    setattr(fn, attr, _DYNAMIC if dynamic else (name or fn.__name__))
    if description is not None:
        setattr(fn, _DESCRIPTION_ATTR, description)


@overload
def defn(cls: ClassType) -> ClassType: ...


@overload
def defn(
    *,
    name: str | None = None,
    sandboxed: bool = True,
    dynamic: bool = False,
    failure_exception_types: Sequence[type[BaseException]] = (),
) -> Callable[[ClassType], ClassType]: ...


def defn(
    cls: ClassType | None = None,
    *,
    name: str | None = None,
    sandboxed: bool = True,
    dynamic: bool = False,
    failure_exception_types: Sequence[type[BaseException]] = (),
) -> ClassType | Callable[[ClassType], ClassType]:
    """Declare a class as a workflow. Exactly one ``async`` method is marked ``@workflow.run``.

    Args:
        name: the workflow type's name; the class name by default.
        sandboxed: accepted for Temporal's samples. perdure has no import sandbox: workflow
            code always runs as imported, its calls watched by the determinism guard
            (``Worker(deterministic_guard=False)`` turns that off), whatever this says.
        dynamic: run every workflow type no other workflow of the worker is registered as
            (at most one per worker). The run method takes one ``Sequence[RawValue]``: the
            start's arguments, unconverted; ``workflow.info().workflow_type`` names the type
            it was started as. Not with ``name``.
        failure_exception_types: exception types that fail the workflow (or the update)
            rather than only its workflow task, added to the worker's
            ``workflow_failure_exception_types`` (``ApplicationError`` and the other
            ``FailureError`` always do). Listing ``NondeterminismError`` (or a base of it such
            as ``Exception``) makes non-determinism fail the workflow too.

    Example::

        @workflow.defn
        class Greeting:
            @workflow.run
            async def run(self, name: str) -> str:
                return await workflow.execute_activity(
                    say_hello, name, start_to_close_timeout=timedelta(seconds=5))
    """
    if dynamic and name is not None:
        raise TypeError("@workflow.defn takes name= or dynamic=True, not both")

    def decorate(cls: ClassType) -> ClassType:
        run_fns = []
        # Handlers by kind, then by name; a dynamic one is under the empty name.
        found: dict[str, dict[str, HandlerDefinition]] = {
            _SIGNAL_ATTR: {},
            _QUERY_ATTR: {},
            _UPDATE_ATTR: {},
        }
        for klass in reversed(cls.__mro__):
            for fn in vars(klass).values():
                if getattr(fn, _RUN_ATTR, False) and klass is cls:
                    run_fns.append(fn)
                for attr, handlers in found.items():
                    handler = getattr(fn, attr, None)
                    if handler is not None:
                        handlers[handler] = _handler(fn, handler)
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
        if dynamic and _positional_count(run_fn) != 1:
            raise TypeError(
                f"The run method of dynamic workflow {cls.__qualname__} must take "
                "(self, args: Sequence[RawValue]): the start's arguments, unconverted"
            )
        arg_types, ret_type = _arg_and_return_types(run_fn, skip_self=True)
        # Inherited like any method, as in Temporal: a base class's @workflow.init __init__
        # takes the arguments of its subclasses' runs too.
        init_takes_args = bool(getattr(getattr(cls, "__init__", None), _INIT_ATTR, False))
        signals, queries, updates = found[_SIGNAL_ATTR], found[_QUERY_ATTR], found[_UPDATE_ATTR]
        dynamic_signal = signals.pop(_DYNAMIC, None)
        dynamic_query = queries.pop(_DYNAMIC, None)
        dynamic_update = updates.pop(_DYNAMIC, None)
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
            dynamic=dynamic,
            sandboxed=sandboxed,
            dynamic_signal=dynamic_signal,
            dynamic_query=dynamic_query,
            dynamic_update=dynamic_update,
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
def signal(
    *, name: str | None = None, dynamic: bool = False, description: str | None = None
) -> Callable[[CallableType], CallableType]: ...


def signal(
    fn: CallableType | None = None,
    *,
    name: str | None = None,
    dynamic: bool = False,
    description: str | None = None,
) -> CallableType | Callable[[CallableType], CallableType]:
    """Mark a method as a signal handler (sync or async); signals are delivered in order,
    exactly once, and recorded in history.

    Args:
        name: the signal's name; the method's name by default.
        dynamic: handle every signal no named handler takes. The method takes
            ``(self, name: str, args: Sequence[RawValue])``. Not with ``name``.
        description: a short description, shown by the ``__perdure_workflow_metadata`` query.
    """

    def decorate(fn: CallableType) -> CallableType:
        _mark_handler(fn, _SIGNAL_ATTR, "signal", name, dynamic, description)
        return fn

    return decorate(fn) if fn is not None else decorate


@overload
def query(fn: CallableType) -> CallableType: ...


@overload
def query(
    *, name: str | None = None, dynamic: bool = False, description: str | None = None
) -> Callable[[CallableType], CallableType]: ...


def query(
    fn: CallableType | None = None,
    *,
    name: str | None = None,
    dynamic: bool = False,
    description: str | None = None,
) -> CallableType | Callable[[CallableType], CallableType]:
    """Mark a (non-async) method as a query handler: it reads state and never changes history.

    Args:
        name: the query's name; the method's name by default.
        dynamic: answer every query no named handler takes (built-in ones aside). The method
            takes ``(self, name: str, args: Sequence[RawValue])``. Not with ``name``.
        description: a short description, shown by the ``__perdure_workflow_metadata`` query.
    """

    def decorate(fn: CallableType) -> CallableType:
        if inspect.iscoroutinefunction(fn):
            raise TypeError(f"@workflow.query method {fn.__qualname__} must not be async")
        _mark_handler(fn, _QUERY_ATTR, "query", name, dynamic, description)
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
def update(
    *, name: str | None = None, dynamic: bool = False, description: str | None = None
) -> Callable[[Callable[P, R]], UpdateMethod[P, R]]: ...


def update(
    fn: Callable[P, R] | None = None,
    *,
    name: str | None = None,
    dynamic: bool = False,
    description: str | None = None,
) -> UpdateMethod[P, R] | Callable[[Callable[P, R]], UpdateMethod[P, R]]:
    """Mark a method (sync or async) as an update handler: a request that changes the
    workflow and returns a result to the caller, recorded in history.

    A validator, declared with ``@my_update.validator``, runs before the update is accepted;
    if it raises, the update is rejected and leaves no trace in history.

    Args:
        name: the update's name; the method's name by default.
        dynamic: handle every update no named handler takes. The method (and its validator)
            takes ``(self, name: str, args: Sequence[RawValue])``. Not with ``name``.
        description: a short description, shown by the ``__perdure_workflow_metadata`` query.

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
        _mark_handler(fn, _UPDATE_ATTR, "update", name, dynamic, description)

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
    if name == _DYNAMIC:
        raise TypeError(
            f"{getattr(fn, '__qualname__', fn)!r} is a dynamic {kind} handler, which has no "
            f"name of its own: name the {kind} with a string"
        )
    return check_handler_name(name, kind)
