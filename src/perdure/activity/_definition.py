"""Activity definitions: what ``@activity.defn`` learns about a function."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints, overload

CallableType = TypeVar("CallableType", bound=Callable[..., Any])

_DEFN_ATTR = "__perdure_activity_definition__"


@dataclass(frozen=True)
class ActivityDefinition:
    """An activity: its registered name, the callable, and its argument and result types."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    arg_types: list[Any]
    ret_type: Any

    @staticmethod
    def from_callable(fn: Any) -> ActivityDefinition:
        defn = getattr(fn, _DEFN_ATTR, None)
        if not isinstance(defn, ActivityDefinition):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is not an activity: decorate it with "
                "@activity.defn"
            )
        if inspect.ismethod(fn):  # a bound method: call it bound, same name and types
            return ActivityDefinition(defn.name, fn, defn.is_async, defn.arg_types, defn.ret_type)
        return defn


@overload
def defn(fn: CallableType) -> CallableType: ...


@overload
def defn(*, name: str | None = None) -> Callable[[CallableType], CallableType]: ...


def defn(
    fn: CallableType | None = None, *, name: str | None = None
) -> CallableType | Callable[[CallableType], CallableType]:
    """Declare a function (``async def`` or plain ``def``) as an activity.

    Async activities run on the worker's event loop; plain functions run in its thread pool.

    Example::

        @activity.defn
        async def charge(order: Order) -> str:
            return await payments.charge(order.id, order.total)
    """

    def decorate(fn: CallableType) -> CallableType:
        try:
            hints = get_type_hints(fn)
        except Exception:  # unresolvable annotations: fall back to untyped decoding
            hints = {}
        params = list(inspect.signature(fn).parameters.values())
        if params and params[0].name == "self":
            params = params[1:]
        definition = ActivityDefinition(
            name=name or fn.__name__,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            arg_types=[hints.get(p.name) for p in params],
            ret_type=hints.get("return"),
        )
        setattr(fn, _DEFN_ATTR, definition)
        return fn

    return decorate(fn) if fn is not None else decorate
