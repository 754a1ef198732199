"""The unit of data perdure stores: bytes plus metadata saying how to read them."""

from __future__ import annotations

from binascii import a2b_base64, b2a_base64
from dataclasses import dataclass, field
from typing import Any

# Metadata values repeat (b"json/plain", b"binary/null", a codec's name): their base64 forms
# are remembered both ways, so reading and writing a history converts each one only once.
# Bounded, since a codec could write a new value per payload.
_CACHE_SIZE = 256
_CACHED_LENGTH = 64
_TEXT_OF: dict[bytes, str] = {}
_BYTES_OF: dict[str, bytes] = {}
_NO_METADATA: dict[str, str] = {}


@dataclass(slots=True)
class Payload:
    """Serialized data with its metadata (``encoding`` names the converter that wrote it).

    The same shape as Temporal's ``Payload``, so converter and codec code ports unchanged.
    """

    metadata: dict[str, bytes] = field(default_factory=dict)
    data: bytes = b""

    def to_json(self) -> dict[str, Any]:
        """The JSON form used in histories: metadata values and data in base64."""
        return {
            "metadata": {k: _metadata_text(v) for k, v in self.metadata.items()},
            "data": b2a_base64(self.data, newline=False).decode(),
        }

    @staticmethod
    def from_json(obj: dict[str, Any]) -> Payload:
        """Read the form written by :meth:`to_json`."""
        # A loop rather than a comprehension, and a remembered value looked up inline: this
        # runs for every payload of every event a store reads.
        metadata = {}
        for k, v in obj.get("metadata", _NO_METADATA).items():
            metadata[k] = _BYTES_OF.get(v) or _metadata_bytes(v)
        return Payload(metadata, a2b_base64(obj.get("data", "")))

    def size(self) -> int:
        """Bytes this payload takes: data plus metadata."""
        return len(self.data) + sum(len(k) + len(v) for k, v in self.metadata.items())


def _metadata_text(value: bytes) -> str:
    try:
        text = _TEXT_OF.get(value)
    except TypeError:  # a bytearray: unhashable, and mutable, so never remembered
        text = None
    if text is None:
        text = b2a_base64(value, newline=False).decode()
        if type(value) is bytes and len(value) <= _CACHED_LENGTH and len(_TEXT_OF) < _CACHE_SIZE:
            _TEXT_OF[value] = text
    return text


def _metadata_bytes(text: str) -> bytes:
    try:
        value = _BYTES_OF.get(text)
    except TypeError:  # not a string (a caller's bytearray): converted, never remembered
        value = None
    if value is None:
        # What base64.b64decode does (non-alphabet characters are skipped), minus its checks.
        value = a2b_base64(text)
        if type(text) is str and len(text) <= _CACHED_LENGTH and len(_BYTES_OF) < _CACHE_SIZE:
            _BYTES_OF[text] = value
    return value


@dataclass(frozen=True, slots=True)
class RawValue:
    """A payload left unconverted: what a dynamic workflow, activity or handler receives for
    each argument, and a type hint (or a value) that passes a payload through as it is.

    Read one with the running workflow's or activity's converter::

        name = workflow.payload_converter().from_payload(args[0].payload, str)

    (Temporal's ``temporalio.common.RawValue``; payload codecs still apply.)
    """

    payload: Payload
