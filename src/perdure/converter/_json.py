"""The ``json/plain`` encoding: Python values to JSON bytes, and back to the types in signatures.

:func:`encode_value` writes, with `orjson <https://github.com/ijl/orjson>`_:

- ``None``, ``bool``, ``int`` (within 64 bits), ``float``, ``str``, and lists, tuples and
  dicts of them (dict keys may also be ints, floats, bools, enums, UUIDs and dates: they
  become JSON strings);
- dataclasses, as objects of their fields;
- pydantic v2 models, as ``model.model_dump(mode="json")``;
- ``datetime``, ``date`` and ``time``, as ISO 8601 strings;
- ``UUID`` as its string, enum members as their value, ``Decimal`` as its string;
- ``bytes``, ``bytearray`` and ``memoryview`` as base64 strings;
- sets and frozensets as arrays (sorted when their items can be sorted, so that equal sets
  give equal bytes), named tuples as arrays.

Anything else raises :class:`TypeError`. Nothing is ever pickled.

:func:`decode_value` reads the JSON and, given a type hint, rebuilds that type: dataclasses
(their annotations resolved with :func:`typing.get_type_hints`, so
``from __future__ import annotations`` works; generic dataclasses too), pydantic models,
named tuples, ``TypedDict``, the scalar types above, enums (by value), ``list``, ``tuple``,
``set``, ``frozenset``, ``dict`` (keys converted too), the ``collections.abc`` sequences,
sets and mappings, ``Optional``, ``Union`` (members tried in order), ``Literal``,
``NewType``, ``Annotated``, type aliases and type variables (as their bound). A value that
does not fit raises :class:`TypeError` naming where, for example
``cannot decode JSON as Order: $.items[2].price: expected float, got str``.

What JSON cannot say does not encode: ``float("nan")`` and the infinities (a
``ValueError`` naming where they are, rather than a silent ``null``), integers beyond 64
bits; a time zone becomes its UTC offset. The work of
understanding each type hint is done once and cached, so decoding many values of one type
costs little more than the JSON parse.
"""

from __future__ import annotations

import base64
import decimal
from typing import Any

import orjson

from perdure.converter._json_decode import decode_value
from perdure.converter._json_finite import find_non_finite
from perdure.converter._json_shapes import (
    _UNSUPPORTED_HINT,
    _is_pydantic_model_class,
    _type_name,
)

__all__ = ["decode_value", "encode_value"]


# --- Encoding ----------------------------------------------------------------------------


def encode_value(value: Any) -> bytes:
    """Encode ``value`` as JSON.

    Args:
        value: A value of one of the types listed in this module's docstring, or a
            structure of them.

    Returns:
        The UTF-8 JSON bytes.

    Raises:
        TypeError: ``value`` holds something JSON cannot represent.
        ValueError: ``value`` holds a NaN or an infinity (as ``json.dumps(allow_nan=False)``).

    Example:
        >>> encode_value({"when": datetime.date(2024, 5, 1), "tags": {"b", "a"}})
        b'{"when":"2024-05-01","tags":["a","b"]}'
    """
    try:
        out = orjson.dumps(value, default=_encode_default)
    except TypeError:
        pass
    else:
        return out if b"null" not in out else _refuse_non_finite(value, out)
    # Non-str dict keys need OPT_NON_STR_KEYS, which makes every dump about twice as slow,
    # so it is only paid for by the values that need it.
    try:
        out = orjson.dumps(value, default=_encode_default, option=orjson.OPT_NON_STR_KEYS)
        return out if b"null" not in out else _refuse_non_finite(value, out, keys=True)
    except TypeError as exc:
        cause = exc.__cause__
        if isinstance(cause, TypeError):  # raised by _encode_default, already explained
            raise TypeError(str(cause)) from None
        raise TypeError(
            f"cannot encode {_type_name(type(value))} as JSON: {exc}; use JSON-compatible "
            "values, or pass a custom DataConverter"
        ) from None


def _refuse_non_finite(value: Any, out: bytes, *, keys: bool = False) -> bytes:
    """``out``, unless a NaN or infinity in ``value`` became one of its ``null``s."""
    found = find_non_finite(value, keys=keys)
    if found is None:
        return out
    path, number = found
    raise ValueError(
        f"cannot encode float({str(float(number))!r}) at {path} as JSON, which has no NaN or "
        "infinity (it would come back as None): send None or a string in its place, or "
        "pass a custom DataConverter"
    )


def _encode_default(value: Any) -> Any:
    """The types orjson does not write by itself, as something it does."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:  # items that do not compare, such as a mix of ints and strs
            return list(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, tuple):  # orjson writes plain tuples only, not named tuples
        return list(value)
    if _is_pydantic_model_class(type(value)):
        return value.model_dump(mode="json")
    raise TypeError(
        f"cannot encode a value of type {_type_name(type(value))} as JSON: {_UNSUPPORTED_HINT}"
    )
