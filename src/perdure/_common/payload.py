"""The unit of data perdure stores: bytes plus metadata saying how to read them."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any


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
            "metadata": {k: base64.b64encode(v).decode() for k, v in self.metadata.items()},
            "data": base64.b64encode(self.data).decode(),
        }

    @staticmethod
    def from_json(obj: dict[str, Any]) -> Payload:
        """Read the form written by :meth:`to_json`."""
        return Payload(
            metadata={k: base64.b64decode(v) for k, v in obj.get("metadata", {}).items()},
            data=base64.b64decode(obj.get("data", "")),
        )

    def size(self) -> int:
        """Bytes this payload takes: data plus metadata."""
        return len(self.data) + sum(len(k) + len(v) for k, v in self.metadata.items())
