"""The building blocks of JSON decoding: the mismatch error that carries its path, type names as
a reader writes them, and the converters that need no other type's converter (scalars,
literals, sequences, mappings and records once their items' converters are built).
``_json_decode`` builds a converter for any hint out of these."""

from __future__ import annotations

import dataclasses
import decimal
import enum
import sys
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

_Convert = Callable[[Any], Any]


_UNSUPPORTED_HINT = "make it a dataclass or pydantic model, or pass a custom DataConverter"


def _is_pydantic_model_class(cls: Any) -> bool:
    # A model instance or class exists only once pydantic.main has been imported, so looking
    # it up in sys.modules keeps pydantic optional and never imports it.
    main = sys.modules.get("pydantic.main")
    return main is not None and isinstance(cls, type) and issubclass(cls, main.BaseModel)


def _type_name(hint: Any) -> str:
    """``hint`` as a reader writes it: ``list[Order]``, ``int | None``."""
    if hint is None or hint is types.NoneType:
        return "None"
    if hint is Ellipsis:
        return "..."
    origin = typing.get_origin(hint)
    if origin is None:
        name = getattr(hint, "__qualname__", None) or getattr(hint, "__name__", None)
        if not isinstance(name, str):
            return repr(hint)
        return name.rpartition("<locals>.")[2]  # Outer.Inner, not make.<locals>.Inner
    args = typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        return " | ".join(_type_name(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is Annotated:
        return _type_name(args[0])
    base = _type_name(origin)
    return f"{base}[{', '.join(_type_name(a) for a in args)}]" if args else base


class _Mismatch(Exception):
    """A JSON value does not fit its type hint.


    The path is built on the way out, each container adding its step, so that decoding
    that succeeds never spends time on paths.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.steps: list[str] = []

    def path(self, root: str = "$") -> str:
        return root + "".join(reversed(self.steps))


_PLAIN = frozenset({types.NoneType, bool, int, float, str})


def _got(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _identity(value: Any) -> Any:
    return value


def _lazy(build: Callable[[], _Convert]) -> _Convert:
    """A converter built on first use, for types that may refer to themselves."""
    built: _Convert | None = None

    def convert(value: Any) -> Any:
        nonlocal built
        if built is None:
            built = build()
        return built(value)

    return convert


def _exactly(kind: type, name: str) -> _Convert:
    def convert(value: Any) -> Any:
        if type(value) is kind:
            return value
        raise _Mismatch(f"expected {name}, got {_got(value)}")

    return convert


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    raise _Mismatch(f"expected float, got {_got(value)}")


def _decimal(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int:
        try:
            return decimal.Decimal(value)
        except (ValueError, ArithmeticError) as exc:
            raise _Mismatch(f"invalid Decimal: {value!r}") from exc
    if kind is float:
        return decimal.Decimal(repr(value))  # the shortest spelling, not the binary expansion
    raise _Mismatch(f"expected Decimal as a string, got {_got(value)}")


def _from_str(parse: Callable[[str], Any], name: str) -> _Convert:
    def convert(value: Any) -> Any:
        if type(value) is not str:
            raise _Mismatch(f"expected {name} as a string, got {_got(value)}")
        try:
            return parse(value)
        except ValueError as exc:
            raise _Mismatch(f"invalid {name}: {value!r}") from exc

    return convert


def _enum(cls: type[enum.Enum]) -> _Convert:
    def convert(value: Any) -> Any:
        try:
            return cls(value)
        except (ValueError, TypeError) as exc:
            if type(value) is list:  # a tuple value, written as a JSON array
                try:
                    return cls(tuple(value))
                except (ValueError, TypeError):
                    pass
            raise _Mismatch(f"{value!r} is not a valid {_type_name(cls)}") from exc

    return convert


def _literal(args: tuple[Any, ...], name: str) -> _Convert:
    # Keyed by type too, so that Literal[1] does not take True, nor Literal[True] take 1.
    table = {}
    for arg in args:
        written = arg.value if isinstance(arg, enum.Enum) else arg
        table[type(written), written] = arg

    def convert(value: Any) -> Any:
        if type(value) in _PLAIN:
            found = table.get((type(value), value), _ABSENT)
            if found is not _ABSENT:
                return found
        raise _Mismatch(f"expected {name}, got {value!r}")

    return convert


def _sequence(item: _Convert, kind: Callable[[list[Any]], Any], name: str) -> _Convert:
    def convert(value: Any) -> Any:
        if type(value) is not list:
            raise _Mismatch(f"expected {name} as a JSON array, got {_got(value)}")
        items = value if item is _identity else _convert_items(item, value)
        if kind is list:
            return items
        try:
            return kind(items)
        except TypeError as exc:  # unhashable items for a set
            raise _Mismatch(f"cannot make {name}: {exc}") from exc

    return convert


def _convert_items(item: _Convert, value: list[Any]) -> list[Any]:
    try:
        return [item(element) for element in value]
    except _Mismatch:
        pass
    # Again, one at a time, to say where: the fast path above does not keep count.
    items = []
    for index, element in enumerate(value):
        try:
            items.append(item(element))
        except _Mismatch as exc:
            exc.steps.append(f"[{index}]")
            raise
    return items


def _fixed_tuple(
    items: list[_Convert],
    name: str,
    make: Callable[[list[Any]], Any] = tuple,
    required: int | None = None,
) -> _Convert:
    """A JSON array of ``len(items)`` values, or at least ``required`` of them."""
    least = len(items) if required is None else required

    def convert(value: Any) -> Any:
        if type(value) is not list:
            raise _Mismatch(f"expected {name} as a JSON array, got {_got(value)}")
        if not least <= len(value) <= len(items):
            raise _Mismatch(f"expected {name} with {len(items)} items, got {len(value)}")
        out = []
        for index, (item, element) in enumerate(zip(items, value, strict=False)):
            try:
                out.append(item(element))
            except _Mismatch as exc:
                exc.steps.append(f"[{index}]")
                raise
        try:
            return make(out)
        except (TypeError, ValueError) as exc:  # from a named tuple's __new__
            raise _Mismatch(f"{name}() raised {type(exc).__name__}: {exc}") from exc

    return convert


def _mapping(key: _Convert, item: _Convert, name: str) -> _Convert:
    def convert(value: Any) -> Any:
        if type(value) is not dict:
            raise _Mismatch(f"expected {name} as a JSON object, got {_got(value)}")
        if key is _identity and item is _identity:
            return value
        try:
            return {key(k): item(v) for k, v in value.items()}
        except _Mismatch:
            pass
        out = {}  # again, one at a time, to say where
        for json_key, element in value.items():
            try:
                out[key(json_key)] = item(element)
            except _Mismatch as exc:
                exc.steps.append(f"[{json_key!r}]")
                raise
        return out

    return convert


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    name: str
    convert: _Convert
    required: bool


_ABSENT: Any = object()


def _record(
    name: str, fields: list[_Field], make: Callable[[dict[str, Any], dict[str, Any]], Any]
) -> _Convert:
    """A JSON object whose known keys are converted, then handed to ``make``."""

    def convert(value: Any) -> Any:
        if type(value) is not dict:
            raise _Mismatch(f"expected {name} as a JSON object, got {_got(value)}")
        converted = {}
        for field in fields:
            element = value.get(field.name, _ABSENT)
            if element is _ABSENT:
                if field.required:
                    raise _Mismatch(f"missing required field {field.name!r} of {name}")
                continue
            try:
                converted[field.name] = field.convert(element)
            except _Mismatch as exc:
                exc.steps.append(f".{field.name}")
                raise
        return make(value, converted)

    return convert


def _pydantic(cls: Any) -> _Convert:
    def convert(value: Any) -> Any:
        try:
            return cls.model_validate(value)
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            errors = exc.errors() if hasattr(exc, "errors") else []
            if not errors:
                raise _Mismatch(f"invalid {_type_name(cls)}: {exc}") from exc
            first = errors[0]
            more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
            mismatch = _Mismatch(f"{first['msg']}{more}")
            mismatch.steps.extend(
                f"[{step}]" if isinstance(step, int) else f".{step}"
                for step in reversed(first.get("loc", ()))
            )
            raise mismatch from exc

    return convert
