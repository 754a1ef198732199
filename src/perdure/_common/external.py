"""References to payloads kept outside the database (``DataConverter(external_storage=...)``).

A payload over the storage's threshold is stored as a blob named by the SHA-256 of its
bytes, and history keeps a small reference payload in its place::

    Payload(metadata={"encoding": b"perdure/external"},
            data=b'{"key": "<sha-256, hex>", "size": <bytes>, "uri": "<the storage>"}')

The store reads these references (and nothing else of a payload) in what it writes, so that
it knows which runs refer to which blobs: a blob that only deleted runs referred to can be
deleted from the storage. The reference's metadata value is base64 in stored JSON, always
the same string, so finding references in a stored row is one substring test.
"""

from __future__ import annotations

import contextlib
from binascii import a2b_base64, b2a_base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from perdure._common.payload import Payload

ENCODING = b"perdure/external"
# How the encoding appears in a stored row (Payload.to_json writes metadata in base64).
_STORED = b2a_base64(ENCODING, newline=False)
_STORED_TEXT = _STORED.decode()


@dataclass(frozen=True, slots=True)
class Reference:
    """What a reference payload says: the blob's key and size, and the storage it is in."""

    key: str
    size: int
    uri: str | None


def reference(key: str, size: int, uri: str) -> Payload:
    """The payload that stands in history for the blob ``key`` of ``size`` bytes."""
    return Payload({"encoding": ENCODING}, orjson.dumps({"key": key, "size": size, "uri": uri}))


def is_reference(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


def reference_info(payload: Payload) -> Reference:
    """What a reference payload names.

    Raises:
        ValueError: the payload is not a well-formed reference.
    """
    try:
        info = orjson.loads(payload.data)
        key, size, uri = info["key"], info.get("size", 0), info.get("uri")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"Malformed external payload reference: {payload.data[:200]!r}") from exc
    if not isinstance(key, str) or not key.isalnum():
        raise ValueError(f"Malformed external payload reference: {payload.data[:200]!r}")
    return Reference(key, int(size), uri if isinstance(uri, str) else None)


def keys_in_rows(blobs: Iterable[bytes]) -> set[str]:
    """The blob keys referred to by stored rows (attributes as ``encode_attributes`` wrote
    them). Costs one substring test a row when there are none."""
    keys: set[str] = set()
    for blob in blobs:
        if _STORED in blob:
            _collect(orjson.loads(blob), keys)
    return keys


def _collect(value: Any, keys: set[str]) -> None:
    if isinstance(value, dict):
        metadata = value.get("metadata")
        if (
            len(value) == 2
            and isinstance(metadata, dict)
            and metadata.get("encoding") == _STORED_TEXT
            and isinstance(value.get("data"), str)
        ):
            with contextlib.suppress(ValueError):  # not one of ours after all
                keys.add(reference_info(Payload(data=a2b_base64(value["data"]))).key)
            return
        for v in value.values():
            _collect(v, keys)
    elif isinstance(value, list):
        for v in value:
            _collect(v, keys)
