"""Finding a ``float("nan")`` or infinity in a value about to be written as JSON.

JSON has no NaN or infinity, and orjson writes them as ``null`` without a word: a workflow
would get ``None`` back where it sent a float. So :func:`find_non_finite` looks for them,
and the converter refuses the value. It is only called when the JSON written holds a
``null`` (the one token they can have become), so values without one cost nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

from perdure.converter._json_decode import _is_pydantic_model_class

_SCALARS = (str, int, bool, type(None))


def find_non_finite(value: Any, path: str = "$") -> tuple[str, float] | None:
    """Where in ``value`` a NaN or infinity is, and which: ``("$.stats.mean", nan)``; or
    ``None``. It walks what orjson and the JSON converter write: dicts (keys too), lists,
    tuples, sets, dataclasses, enums and pydantic models."""
    if type(value) is float or isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, float) and not math.isfinite(key):
                return f"{path} (a key)", key
            found = find_non_finite(item, f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple | set | frozenset):
        for i, item in enumerate(value):
            found = find_non_finite(item, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if isinstance(value, enum.Enum):
        return find_non_finite(value.value, path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            found = find_non_finite(getattr(value, f.name, None), f"{path}.{f.name}")
            if found is not None:
                return found
        return None
    if _is_pydantic_model_class(type(value)):
        return find_non_finite(value.model_dump(mode="python"), path)
    return None
