"""Decoding ``json/plain`` payloads back to the types in signatures; ``_json`` says what
is supported."""

from __future__ import annotations

import base64
import collections.abc
import dataclasses
import datetime
import decimal
import enum
import types
import typing
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

import orjson

from perdure.converter._json_shapes import (
    _PLAIN,
    _UNSUPPORTED_HINT,
    _Convert,
    _decimal,
    _enum,
    _exactly,
    _Field,
    _fixed_tuple,
    _float,
    _from_str,
    _got,
    _identity,
    _is_pydantic_model_class,
    _lazy,
    _literal,
    _mapping,
    _Mismatch,
    _pydantic,
    _record,
    _sequence,
    _type_name,
)


def decode_value(data: bytes, type_hint: Any = None) -> Any:
    """Decode JSON, rebuilt as ``type_hint`` when one is given.

    Args:
        data: UTF-8 JSON bytes, as written by :func:`encode_value`.
        type_hint: The type to rebuild, such as a parameter's annotation. ``None``,
            ``Any`` and ``object`` return the JSON value as parsed.

    Returns:
        The decoded value.

    Raises:
        orjson.JSONDecodeError: ``data`` is not JSON (a :class:`ValueError`).
        TypeError: The JSON does not fit ``type_hint``, or ``type_hint`` is not a type this
            module can rebuild.

    Example:
        >>> decode_value(b'{"1": ["2024-05-01"]}', dict[int, list[datetime.date]])
        {1: [datetime.date(2024, 5, 1)]}
    """
    value = orjson.loads(data)
    if type_hint is None or type_hint is Any or type_hint is object:
        return value
    try:
        return _converter(type_hint)(value)
    except _Mismatch as exc:
        raise TypeError(
            f"cannot decode JSON as {_type_name(type_hint)}: {exc.path()}: {exc.message}"
        ) from exc.__cause__


_CACHE: dict[Any, _Convert] = {}


def _converter(hint: Any) -> _Convert:
    """The function that turns a JSON value into ``hint``, built once per hint."""
    try:
        return _CACHE[hint]
    except KeyError:
        pass
    except TypeError:  # an unhashable hint, such as Annotated with a dict in its metadata
        return _build(hint)
    convert = _build(hint)
    _CACHE[hint] = convert
    return convert


def _build(hint: Any) -> _Convert:
    if hint is Any or hint is object:
        return _identity
    if hint is None or hint is types.NoneType:
        return _exactly(types.NoneType, "None")
    if isinstance(hint, str | typing.ForwardRef):
        raise TypeError(
            f"cannot decode JSON as the string annotation {hint!r}: resolve it first, for "
            "example with typing.get_type_hints()"
        )
    if isinstance(hint, typing.TypeVar):
        return _converter(hint.__bound__) if hint.__bound__ is not None else _identity
    if isinstance(hint, typing.NewType):
        return _converter(hint.__supertype__)
    if type(hint).__name__ == "TypeAliasType" and hasattr(hint, "__value__"):
        return _lazy(lambda: _converter(hint.__value__))  # lazy: an alias may name itself

    origin = typing.get_origin(hint)
    if origin is not None:
        return _build_generic(hint, origin, typing.get_args(hint))
    if isinstance(hint, type):
        return _build_class(hint)
    raise TypeError(f"cannot decode JSON as {hint!r}: {_UNSUPPORTED_HINT}")


def _build_generic(hint: Any, origin: Any, args: tuple[Any, ...]) -> _Convert:
    name = _type_name(hint)
    if origin is Annotated:
        return _converter(args[0])
    if origin is Union or origin is types.UnionType:
        return _union(args, name)
    if origin is Literal:
        return _literal(args, name)
    if origin is tuple:
        if hint is typing.Tuple:  # noqa: UP006 - the bare alias has no args either
            return _sequence(_identity, tuple, name)
        if len(args) == 2 and args[1] is Ellipsis:
            return _sequence(_converter(args[0]), tuple, name)
        return _fixed_tuple([_converter(a) for a in args], name)
    if origin in _SEQUENCES:
        return _sequence(_converter(args[0]) if args else _identity, _SEQUENCES[origin], name)
    if origin in _MAPPINGS:
        if not args:
            return _mapping(_identity, _identity, name)
        return _mapping(_key_converter(args[0]), _converter(args[1]), name)
    if dataclasses.is_dataclass(origin):
        params = getattr(origin, "__parameters__", ())
        return _dataclass(origin, dict(zip(params, args, strict=False)))
    raise TypeError(f"cannot decode JSON as {name}: {_UNSUPPORTED_HINT}")


def _build_class(cls: type) -> _Convert:
    name = _type_name(cls)
    if cls is bool or cls is int or cls is str:
        return _exactly(cls, name)
    if cls is float:
        return _float
    if issubclass(cls, enum.Enum):
        return _enum(cls)
    if cls is datetime.datetime:
        return _from_str(datetime.datetime.fromisoformat, "datetime")
    if cls is datetime.date:
        return _from_str(datetime.date.fromisoformat, "date")
    if cls is datetime.time:
        return _from_str(datetime.time.fromisoformat, "time")
    if cls is uuid.UUID:
        return _from_str(uuid.UUID, "UUID")
    if cls is decimal.Decimal:
        return _decimal
    if cls is bytes or cls is bytearray:
        return _from_str(lambda s: cls(base64.b64decode(s, validate=True)), f"base64 {name}")
    if dataclasses.is_dataclass(cls):
        return _dataclass(cls, {})
    if _is_pydantic_model_class(cls):
        return _pydantic(cls)
    if issubclass(cls, dict) and hasattr(cls, "__required_keys__"):
        return _typed_dict(cls)
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return _named_tuple(cls)
    if cls is tuple:
        return _sequence(_identity, tuple, name)
    if cls in _SEQUENCES:
        return _sequence(_identity, _SEQUENCES[cls], name)
    if cls in _MAPPINGS:
        return _mapping(_identity, _identity, name)
    for base in (str, int, float):  # a subclass such as ``class Sku(str)``
        if issubclass(cls, base):
            base_convert = _converter(base)
            return lambda value: cls(base_convert(value))
    raise TypeError(f"cannot decode JSON as {name}: {_UNSUPPORTED_HINT}")


_SEQUENCES: dict[Any, Callable[[list[Any]], Any]] = {
    list: list,
    collections.abc.Sequence: list,
    collections.abc.MutableSequence: list,
    collections.abc.Collection: list,
    collections.abc.Iterable: list,
    set: set,
    collections.abc.Set: set,
    collections.abc.MutableSet: set,
    frozenset: frozenset,
}
_MAPPINGS = frozenset({dict, collections.abc.Mapping, collections.abc.MutableMapping})


def _union(members: tuple[Any, ...], name: str) -> _Convert:
    if len(members) == 2 and types.NoneType in members:
        # Optional[X]: hand the value straight to X, so that its errors keep their detail.
        inner = _converter(members[0] if members[1] is types.NoneType else members[1])
        return lambda value: None if value is None else inner(value)

    plain = frozenset(m for m in members if m in _PLAIN)
    converters = [(m, _converter(m)) for m in members]

    def convert(value: Any) -> Any:
        if type(value) in plain:
            return value
        failures = []
        for member, member_convert in converters:
            try:
                return member_convert(value)
            except _Mismatch as exc:
                failures.append(f"{exc.path(_type_name(member))}: {exc.message}")
        raise _Mismatch(f"expected {name}, got {_got(value)} ({'; '.join(failures)})")

    return convert


def _key_converter(hint: Any) -> _Convert:
    """Dict keys arrive as strings: ``"1"`` for ``1``, ``"true"`` for ``True``."""
    if hint is str or hint is Any or hint is object:
        return _identity
    convert_value = _converter(hint)
    parse_first = hint is int or hint is float or hint is bool

    def convert(key: Any) -> Any:
        if not parse_first:
            try:
                return convert_value(key)
            except _Mismatch:
                pass
        try:
            return convert_value(orjson.loads(key))
        except (orjson.JSONDecodeError, _Mismatch) as exc:
            raise _Mismatch(f"key {key!r} is not a valid {_type_name(hint)}") from exc

    return convert


def _type_hints(cls: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception as exc:
        raise TypeError(
            f"cannot resolve the annotations of {_type_name(cls)} ({exc}): define it and "
            "the types its annotations name at module level, so they can be looked up"
        ) from exc


def _substitute(hint: Any, typevars: dict[Any, Any]) -> Any:
    """``hint`` with the type variables of a generic dataclass replaced by their arguments."""
    if not typevars:
        return hint
    if isinstance(hint, typing.TypeVar):
        return typevars.get(hint, hint)
    params = getattr(hint, "__parameters__", ())
    if params and typing.get_origin(hint) is not None:
        return hint[tuple(typevars.get(p, p) for p in params)]
    return hint


# Classes are converted lazily, on their first value: their fields may name the class itself.


def _dataclass(cls: Any, typevars: dict[Any, Any]) -> _Convert:
    name = _type_name(cls)

    def make(value: dict[str, Any], kwargs: dict[str, Any]) -> Any:
        try:
            return cls(**kwargs)  # keys that are not fields are ignored
        except (TypeError, ValueError) as exc:  # from __init__ or __post_init__
            raise _Mismatch(f"{name}() raised {type(exc).__name__}: {exc}") from exc

    def build() -> _Convert:
        hints = _type_hints(cls)
        fields = [
            _Field(
                f.name,
                _converter(_substitute(hints.get(f.name, Any), typevars)),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
            if f.init
        ]
        return _record(name, fields, make)

    return _lazy(build)


def _typed_dict(cls: Any) -> _Convert:
    def build() -> _Convert:
        required = cls.__required_keys__
        fields = [_Field(k, _converter(h), k in required) for k, h in _type_hints(cls).items()]
        # Keys it does not declare are kept: at run time a TypedDict is a dict.
        return _record(_type_name(cls), fields, lambda value, known: {**value, **known})

    return _lazy(build)


def _named_tuple(cls: Any) -> _Convert:
    def build() -> _Convert:
        hints = _type_hints(cls)
        items = [_converter(hints.get(f, Any)) for f in cls._fields]
        required = len(cls._fields) - len(cls._field_defaults)
        return _fixed_tuple(items, _type_name(cls), lambda out: cls(*out), required)

    return _lazy(build)
