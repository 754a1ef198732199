"""JSON encoding of Python values, decoded back to the types in signatures.

Placeholder seam: ``encode_value`` and ``decode_value`` are the two functions the payload
converter uses.
"""

from __future__ import annotations

from typing import Any

import orjson


def encode_value(value: Any) -> bytes:
    return orjson.dumps(value)


def decode_value(data: bytes, type_hint: Any = None) -> Any:
    return orjson.loads(data)
