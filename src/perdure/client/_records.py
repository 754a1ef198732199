"""The records a client's listing and counting return: ``WorkflowExecution`` and
``WorkflowExecutionCount``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from perdure._common.status import WorkflowExecutionStatus
from perdure.common._search_attributes import TypedSearchAttributes


@dataclass(frozen=True)
class WorkflowExecution:
    """One execution, as ``list_workflows`` returns it."""

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    namespace: str
    status: WorkflowExecutionStatus
    start_time: datetime
    close_time: datetime | None
    history_length: int
    memo: dict[str, Any]
    typed_search_attributes: TypedSearchAttributes
    parent_id: str | None = None
    parent_run_id: str | None = None


@dataclass(frozen=True)
class WorkflowExecutionCountAggregationGroup:
    """One group of a ``count_workflows(... GROUP BY ExecutionStatus)``.

    Attributes:
        count: the matching runs in this group.
        group_values: the group's value of each grouped field: the status as the query
            language names it (``"Running"``, ``"Completed"``, ...).
    """

    count: int
    group_values: Sequence[Any]


@dataclass(frozen=True)
class WorkflowExecutionCount:
    """What ``count_workflows`` returns.

    Attributes:
        count: the matching runs (with ``GROUP BY``, the sum of the groups' counts).
        groups: with ``GROUP BY ExecutionStatus``, one group per status that has runs, in
            status order; empty otherwise.
    """

    count: int
    groups: Sequence[WorkflowExecutionCountAggregationGroup] = ()
