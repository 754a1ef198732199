"""Finding a ``float("nan")`` or infinity in a value about to be written as JSON.

JSON has no NaN or infinity, and orjson writes them as ``null`` without a word: a workflow
would get ``None`` back where it sent a float. So :func:`find_non_finite` looks for them,
and the converter refuses the value. It is only called when the JSON written holds a
``null`` (the one token they can have become), so values without one cost nothing; the walk
takes the common types first, without recursion, and builds a path only once it has found
one (about 1 µs for a small dataclass, 4 times orjson's own time for a large one).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

from perdure.converter._json_shapes import _is_pydantic_model_class

_isfinite = math.isfinite
# Types that hold no float, whatever their value (the ones payloads are mostly made of).
_LEAVES = frozenset({str, int, bool, type(None), bytes})
_FIELDS: dict[type, tuple[str, ...]] = {}


def find_non_finite(value: Any, *, keys: bool = False) -> tuple[str, float] | None:
    """Where in ``value`` a NaN or infinity is, and which: ``("$.stats.mean", nan)``; or
    ``None``. It walks what orjson and the JSON converter write: dicts (their keys too, if
    ``keys``: only non-string keys can be floats), lists, tuples, sets, dataclasses, enums and
    pydantic models."""
    if not _has_non_finite(value, keys):
        return None
    return _locate(value, "$")  # None if what was found is not written (a "_" attribute)


def _fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _children(value: Any) -> list[tuple[str, Any]] | None:
    """The values inside a container, each with its step in a path; ``None`` for a leaf."""
    if isinstance(value, dict):
        return [(f".{key}", item) for key, item in value.items()]
    if isinstance(value, list | tuple | set | frozenset):
        return [(f"[{i}]", item) for i, item in enumerate(value)]
    if isinstance(value, enum.Enum):
        return [("", value.value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _fields(type(value))  # remembered, for _has_non_finite
        attrs = getattr(value, "__dict__", None)
        pairs = attrs.items() if attrs is not None else ((n, getattr(value, n)) for n in names)
        return [(f".{name}", item) for name, item in pairs if not name.startswith("_")]
    if _is_pydantic_model_class(type(value)):
        return [("", value.model_dump(mode="python"))]
    return None


def _has_non_finite(value: Any, keys: bool) -> bool:
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind in _LEAVES:
            continue
        if kind is float:
            if not _isfinite(item):
                return True
        elif kind is list or kind is tuple:
            extend(item)
        elif kind is dict:
            extend(item.values())
            if keys and any(_non_finite_key(k) for k in item):
                return True
        elif kind in _FIELDS:  # a dataclass seen before
            # orjson writes its __dict__ (or, with slots, its fields) but for names that
            # start with "_": looking at those too only costs a second, exact look.
            attrs = getattr(item, "__dict__", None)
            if attrs is not None:
                extend(attrs.values())
            else:
                extend([getattr(item, name, None) for name in _FIELDS[kind]])
        elif isinstance(item, float):  # a subclass, such as a float enum's member
            if not _isfinite(item):
                return True
        elif keys and isinstance(item, dict) and any(_non_finite_key(k) for k in item):
            return True
        else:
            extend([child for _, child in _children(item) or ()])
    return False


def _non_finite_key(key: Any) -> bool:
    return isinstance(key, float) and not _isfinite(key)


def _locate(value: Any, path: str) -> tuple[str, float] | None:
    """The slow half: the path to the first NaN or infinity (only run once one is known)."""
    if isinstance(value, float):
        return None if _isfinite(value) else (path, value)
    if isinstance(value, dict):
        for key in value:
            if _non_finite_key(key):
                return f"{path} (a key)", key
    for step, item in _children(value) or ():
        found = _locate(item, path + step)
        if found is not None:
            return found
    return None
