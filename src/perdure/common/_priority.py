from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

MAX_PRIORITY_KEY = 5
DEFAULT_PRIORITY_KEY = 3


@dataclass(frozen=True)
class Priority:
    """The order a task queue hands out tasks in (Temporal's ``common.Priority``).

    A worker takes the tasks of the lowest ``priority_key`` first (1 is the most urgent, 5
    the least; None means 3, the middle). Among tasks of one priority key, the tasks of
    different ``fairness_key`` values share the queue in proportion to their
    ``fairness_weight`` (1.0 when None): a tenant with a thousand queued tasks does not make
    a tenant with ten wait for all of them. Tasks of no fairness key are not paced: within
    their priority key they go before the fair ones, in the order they became ready.

    A workflow's priority is its workflow tasks', and the default of the activities and
    child workflows it starts (each field left None is taken from it).

    Example::

        await client.start_workflow(Report.run, id="r-1", task_queue="reports",
                                    priority=Priority(priority_key=1, fairness_key="acme"))
    """

    priority_key: int | None = None
    fairness_key: str | None = None
    fairness_weight: float | None = None

    default: ClassVar[Priority]

    def __post_init__(self) -> None:
        key = self.priority_key
        if key is not None and (
            isinstance(key, bool) or not isinstance(key, int) or not 1 <= key <= MAX_PRIORITY_KEY
        ):
            raise ValueError(
                f"Priority.priority_key must be an int from 1 (first) to {MAX_PRIORITY_KEY} "
                f"(last), or None for {DEFAULT_PRIORITY_KEY}; got {key!r}"
            )
        fair = self.fairness_key
        if fair is not None and (not isinstance(fair, str) or not fair or len(fair) > 64):
            raise ValueError(
                f"Priority.fairness_key must be a non-empty string of at most 64 characters, "
                f"or None; got {fair!r}"
            )
        weight = self.fairness_weight
        if weight is not None and (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not 0.001 <= weight <= 1000
        ):
            raise ValueError(
                f"Priority.fairness_weight must be a number from 0.001 to 1000, or None for "
                f"1.0; got {weight!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stored with runs and tasks and recorded in history events."""
        return {
            "priority_key": self.priority_key,
            "fairness_key": self.fairness_key,
            "fairness_weight": self.fairness_weight,
        }

    @staticmethod
    def from_dict(data: dict[str, Any] | None) -> Priority:
        if not data:
            return Priority.default
        return Priority(
            priority_key=data.get("priority_key"),
            fairness_key=data.get("fairness_key"),
            fairness_weight=data.get("fairness_weight"),
        )


Priority.default = Priority()


def priority_dict(priority: Priority | None) -> dict[str, Any] | None:
    """The stored form of a ``priority=`` argument (None when it sets nothing)."""
    if priority is None:
        return None
    if not isinstance(priority, Priority):
        raise TypeError(f"priority must be a perdure.common.Priority, not {priority!r}")
    return merge_priority(priority.to_dict(), None)


def merge_priority(
    own: dict[str, Any] | None, inherited: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Stored priorities: each field ``own`` leaves unset taken from ``inherited`` (a
    workflow's, for its activities and children); None when nothing is set."""
    own = own or {}
    base = inherited or {}
    merged = {
        k: own.get(k) if own.get(k) is not None else base.get(k)
        for k in ("priority_key", "fairness_key", "fairness_weight")
    }
    return merged if any(v is not None for v in merged.values()) else None
