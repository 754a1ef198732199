from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class RetryPolicy:
    """How failed activities (and workflows that ask for it) are retried.

    Temporal's defaults and semantics: the first retry waits ``initial_interval``, each next
    one ``backoff_coefficient`` times longer, never more than ``maximum_interval`` (100 times
    the initial interval when unset). ``maximum_attempts`` of 0 means no limit.
    ``non_retryable_error_types`` lists ``ApplicationError.type`` values (or exception class
    names) that end retrying at once.

    Example::

        RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=5,
                    non_retryable_error_types=["CardDeclined"])
    """

    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta | None = None
    maximum_attempts: int = 0
    non_retryable_error_types: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.initial_interval <= timedelta(0):
            raise ValueError("RetryPolicy.initial_interval must be positive")
        if self.backoff_coefficient < 1.0:
            raise ValueError("RetryPolicy.backoff_coefficient must be at least 1.0")
        if self.maximum_interval is not None and self.maximum_interval < self.initial_interval:
            raise ValueError("RetryPolicy.maximum_interval must not be below initial_interval")
        if self.maximum_attempts < 0:
            raise ValueError("RetryPolicy.maximum_attempts must be 0 (unlimited) or more")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        initial = self.initial_interval.total_seconds()
        maximum = (
            self.maximum_interval.total_seconds()
            if self.maximum_interval is not None
            else initial * 100
        )
        try:
            delay = initial * self.backoff_coefficient ** max(attempt - 1, 0)
        except OverflowError:  # thousands of attempts in: the cap has long been reached
            delay = maximum
        return float(min(delay, maximum))

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stored with scheduled activities."""
        return {
            "initial_interval": self.initial_interval.total_seconds(),
            "backoff_coefficient": self.backoff_coefficient,
            "maximum_interval": (
                self.maximum_interval.total_seconds() if self.maximum_interval else None
            ),
            "maximum_attempts": self.maximum_attempts,
            "non_retryable_error_types": list(self.non_retryable_error_types or ()),
        }

    @staticmethod
    def from_dict(obj: dict[str, Any]) -> RetryPolicy:
        """Read the form written by :meth:`to_dict`."""
        maximum = obj.get("maximum_interval")
        return RetryPolicy(
            initial_interval=timedelta(seconds=obj["initial_interval"]),
            backoff_coefficient=obj["backoff_coefficient"],
            maximum_interval=timedelta(seconds=maximum) if maximum else None,
            maximum_attempts=obj["maximum_attempts"],
            non_retryable_error_types=obj.get("non_retryable_error_types") or None,
        )
