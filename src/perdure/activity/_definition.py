"""Activity definitions: what ``@activity.defn`` learns about a function."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints, overload

from perdure._common.payload import RawValue

CallableType = TypeVar("CallableType", bound=Callable[..., Any])

_DEFN_ATTR = "__perdure_activity_definition__"


@dataclass(frozen=True)
class ActivityDefinition:
    """An activity: its registered name, the callable, and its argument and result types.

    A dynamic activity runs every activity type no other activity of its worker is
    registered as; it takes one ``Sequence[RawValue]`` (its ``name`` is only its function's).
    """

    name: str
    fn: Callable[..., Any]
    is_async: bool
    arg_types: list[Any]
    ret_type: Any
    dynamic: bool = False

    @staticmethod
    def from_callable(fn: Any) -> ActivityDefinition:
        """The definition of an activity to call by its function.

        Raises:
            TypeError: not an activity, or a dynamic one (name its type with a string).
        """
        defn = ActivityDefinition.registered(fn)
        if defn.dynamic:
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is a dynamic activity: it has no activity "
                "type of its own, so it cannot be called by its function; pass the activity "
                "type's name (a string) and a worker registering it runs that type"
            )
        return defn

    @staticmethod
    def registered(fn: Any) -> ActivityDefinition:
        """The definition of an activity given to a worker (dynamic ones too).

        Raises:
            TypeError: not an activity.
        """
        defn = getattr(fn, _DEFN_ATTR, None)
        if not isinstance(defn, ActivityDefinition):
            raise TypeError(
                f"{getattr(fn, '__qualname__', fn)!r} is not an activity: decorate it with "
                "@activity.defn"
            )
        if inspect.ismethod(fn):  # a bound method: call it bound, same name and types
            return ActivityDefinition(
                defn.name, fn, defn.is_async, defn.arg_types, defn.ret_type, defn.dynamic
            )
        return defn

    def input_types(self, count: int) -> list[Any]:
        """The type hints to read ``count`` input payloads with."""
        return [RawValue] * count if self.dynamic else self.arg_types

    def call_args(self, values: list[Any]) -> list[Any]:
        """The function's arguments, given the input read with :meth:`input_types`."""
        return [values] if self.dynamic else values


@overload
def defn(fn: CallableType) -> CallableType: ...


@overload
def defn(
    *, name: str | None = None, dynamic: bool = False
) -> Callable[[CallableType], CallableType]: ...


def defn(
    fn: CallableType | None = None, *, name: str | None = None, dynamic: bool = False
) -> CallableType | Callable[[CallableType], CallableType]:
    """Declare a function (``async def`` or plain ``def``) as an activity.

    Async activities run on the worker's event loop; plain functions run in its thread pool.

    Args:
        name: the activity type's name; the function's name by default.
        dynamic: run every activity type no other activity of the worker is registered as
            (at most one per worker). The function takes one ``Sequence[RawValue]``, read
            with ``activity.payload_converter()``; ``activity.info().activity_type`` names
            the type it was called as. Not with ``name``.

    Example::

        @activity.defn
        async def charge(order: Order) -> str:
            return await payments.charge(order.id, order.total)
    """

    if dynamic and name is not None:
        raise TypeError("@activity.defn takes name= or dynamic=True, not both")

    def decorate(fn: CallableType) -> CallableType:
        try:
            hints = get_type_hints(fn)
        except Exception:  # unresolvable annotations: fall back to untyped decoding
            hints = {}
        params = list(inspect.signature(fn).parameters.values())
        if params and params[0].name == "self":
            params = params[1:]
        if dynamic and len(params) != 1:
            raise TypeError(
                f"Dynamic activity {fn.__qualname__} must take one parameter, "
                "args: Sequence[RawValue] (the call's arguments, unconverted)"
            )
        definition = ActivityDefinition(
            name=name or fn.__name__,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            arg_types=[hints.get(p.name) for p in params],
            ret_type=hints.get("return"),
            dynamic=dynamic,
        )
        setattr(fn, _DEFN_ATTR, definition)
        return fn

    return decorate(fn) if fn is not None else decorate
