"""A Python port of Jepsen's ``total-queue`` checker, for workflows.

Every operation (a workflow started with an input) is expected to be delivered exactly once,
with the value a pure reference function gives for its input. The checker classifies what
was observed: ``lost`` (attempted, never delivered), ``duplicated`` (delivered more than
once), ``unexpected`` (delivered, never attempted), ``wrong`` (delivered with another value).
Like Jepsen's ``stats``, it refuses a run in which nothing succeeded: such a run tests nothing.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class QueueReport:
    attempted: int = 0
    delivered: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    wrong: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return (
            self.delivered > 0
            and not self.lost
            and not self.duplicated
            and not self.unexpected
            and not self.wrong
        )

    def summary(self) -> str:
        return (
            f"attempted={self.attempted} delivered={self.delivered} lost={len(self.lost)} "
            f"duplicated={len(self.duplicated)} unexpected={len(self.unexpected)} "
            f"wrong={len(self.wrong)}"
            + (f" lost: {self.lost[:10]}" if self.lost else "")
            + (f" duplicated: {dict(list(self.duplicated.items())[:10])}" * bool(self.duplicated))
            + (f" unexpected: {self.unexpected[:10]}" if self.unexpected else "")
            + (f" wrong: {dict(list(self.wrong.items())[:10])}" if self.wrong else "")
        )


def check_queue(
    attempted: Mapping[str, Any],
    delivered: Iterable[tuple[str, Any]],
    reference: Callable[[Any], Any],
) -> QueueReport:
    """``attempted``: operation id -> input; ``delivered``: (operation id, value) for every
    delivery observed (a workflow's completion events, a queue's completed rows)."""
    report = QueueReport(attempted=len(attempted))
    seen: collections.Counter[str] = collections.Counter()
    for op, value in delivered:
        seen[op] += 1
        report.delivered += 1
        if op not in attempted:
            report.unexpected.append(op)
            continue
        expected = reference(attempted[op])
        if value != expected and op not in report.wrong:
            report.wrong[op] = (value, expected)
    report.lost = sorted(op for op in attempted if seen[op] == 0)
    report.duplicated = {op: n for op, n in seen.items() if n > 1}
    return report
