"""What workers report to a metrics backend: a small protocol, so the engine never imports one.

A worker calls its sink at a few points (a workflow task ran, a run closed, an activity attempt
started or ended); the gauges that are a state rather than an event (slots, the sticky cache,
the store's backlogs) are read by the sink when it is scraped, through :class:`WorkerGauges`
and :class:`StoreGauges` sources the worker registers. ``perdure.contrib.prometheus`` is the
one implementation perdure ships; ``None`` (the default) reports nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol


class WorkflowClose(enum.Enum):
    """How a run a workflow task closed ended (Temporal's workflow_* counters)."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    CONTINUE_AS_NEW = "continue_as_new"


@dataclass(frozen=True, slots=True)
class SlotGauge:
    """One kind of task slot of a worker: Temporal's ``worker_type`` label and the counts."""

    worker_type: str  # "WorkflowWorker" or "ActivityWorker"
    available: int
    used: int


@dataclass(frozen=True, slots=True)
class WorkerGauges:
    """A running worker's state, read at scrape time."""

    namespace: str
    task_queue: str
    slots: Callable[[], list[SlotGauge]]
    sticky_cache_size: Callable[[], int]


@dataclass(frozen=True, slots=True)
class BacklogRow:
    """The ready tasks of one task queue and kind, and since when the oldest has waited."""

    namespace: str
    task_queue: str
    kind: str  # "workflow", "activity" or "query"
    count: int
    oldest_ready_at: float


@dataclass(frozen=True, slots=True)
class StoreGauges:
    """What the store holds right now, read by cheap indexed queries (``Store.gauges``)."""

    now: float
    backlog: list[BacklogRow] = field(default_factory=list)
    # (namespace, workflow type) -> open runs, and of those the ones whose last workflow
    # task failed (stuck until the code or its input is fixed).
    workflows_open: dict[tuple[str, str], int] = field(default_factory=dict)
    workflow_tasks_failing: dict[tuple[str, str], int] = field(default_factory=dict)
    timers_pending: int = 0
    # namespace -> the earliest time a schedule should have fired and has not yet.
    schedule_due_since: dict[str, float] = field(default_factory=dict)


StoreGaugeSource = Callable[[], Awaitable[StoreGauges]]


class MetricsSink(Protocol):
    """Receives a worker's metrics. Every method is called on the worker's event loop and must
    return at once (no I/O)."""

    def workflow_task(
        self, namespace: str, task_queue: str, workflow_type: str, seconds: float
    ) -> None:
        """A workflow task was run and recorded in ``seconds``."""

    def workflow_task_failed(self, namespace: str, task_queue: str, workflow_type: str) -> None:
        """A workflow task failed (the run stays open; the task is retried)."""

    def workflow_closed(
        self,
        namespace: str,
        task_queue: str,
        workflow_type: str,
        how: WorkflowClose,
        endtoend_seconds: float,
    ) -> None:
        """A workflow task closed its run, ``endtoend_seconds`` after the run started."""

    def sticky_cache(self, namespace: str, task_queue: str, workflow_type: str, hit: bool) -> None:
        """A workflow task found its run's instance in the worker's cache, or replayed it."""

    def activity_started(
        self, namespace: str, task_queue: str, activity_type: str, schedule_to_start: float
    ) -> None: ...

    def activity_done(
        self, namespace: str, task_queue: str, activity_type: str, seconds: float, failed: bool
    ) -> None:
        """An activity attempt ran for ``seconds`` and completed, or failed."""

    def watch_worker(self, gauges: WorkerGauges) -> Callable[[], None]:
        """Report a running worker's gauges until the returned function is called."""

    def watch_store(self, source: StoreGaugeSource, key: object) -> Callable[[], None]:
        """Report the store gauges ``source`` reads (one source per ``key``: the workers of one
        store share it) until the returned function is called."""
