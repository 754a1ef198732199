"""The failures the engine records on its own account: one record, one encoder.

User code's exceptions become failure dicts through the data converter's ``FailureConverter``.
The engine's own failures (a timed-out activity, an unregistered type, a reset, an update
left behind by a closed run) have no exception to start from: they are built here, so every
one is written in the same shape, which that converter reads back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perdure._common.payload import Payload


@dataclass(frozen=True, slots=True)
class EngineFailure:
    """A failure the engine itself records, as a failure dict in history.

    Args:
        message: what went wrong and what to do about it.
        type: the error type the reader sees (``NotRegisteredError``, ``TimeoutError``...).
        kind: how the failure converter reads it back: ``application``, ``server`` or
            ``timeout`` (then ``timeout_type`` is set).
        non_retryable: whether a retry policy may retry what failed.
        timeout_type: the ``TimeoutType`` of a ``timeout`` failure.
        last_heartbeat_details: the timed-out activity's last heartbeat details.
    """

    message: str
    type: str
    kind: str = "application"
    non_retryable: bool = False
    timeout_type: int | None = None
    last_heartbeat_details: list[Payload] | None = None  # written as given, with timeout_type

    def to_dict(self) -> dict[str, Any]:
        """The failure dict as history stores it (its keys in the order always written)."""
        out: dict[str, Any] = {"message": self.message, "kind": self.kind, "type": self.type}
        if self.timeout_type is not None:
            out["timeout_type"] = self.timeout_type
            out["last_heartbeat_details"] = self.last_heartbeat_details
        out["non_retryable"] = self.non_retryable
        out["details"] = []
        out["cause"] = None
        out["stack_trace"] = ""
        return out


__all__ = ["EngineFailure"]
