"""A running worker's gauges for its metrics sink, and how a workflow task closed its run."""

from __future__ import annotations

from collections.abc import Callable, Sequence, Sized

from perdure._common.commands import (
    CancelWorkflow,
    Command,
    CompleteWorkflow,
    ContinueAsNew,
    FailWorkflow,
)
from perdure._common.metrics import MetricsSink, SlotGauge, WorkerGauges, WorkflowClose
from perdure._store import Store
from perdure.worker._slots import Slots

_CLOSES: dict[type, WorkflowClose] = {
    CompleteWorkflow: WorkflowClose.COMPLETED,
    FailWorkflow: WorkflowClose.FAILED,
    CancelWorkflow: WorkflowClose.CANCELED,
    ContinueAsNew: WorkflowClose.CONTINUE_AS_NEW,
}


def closing(commands: Sequence[Command]) -> WorkflowClose | None:
    """How the run ends if these commands are recorded (None: it stays open)."""
    for command in reversed(commands):  # a closing command comes last, if there is one
        how = _CLOSES.get(type(command))
        if how is not None:
            return how
    return None


def watch(
    metrics: MetricsSink | None,
    store: Store,
    namespace: str,
    task_queue: str,
    workflow_slots: Slots | None,
    activity_slots: Slots | None,
    cache: Sized,
) -> Callable[[], None]:
    """Report a worker's slots (None: it runs no such tasks), the size of its ``cache`` and
    its store's gauges to ``metrics`` while it runs; the function returned stops that."""
    if metrics is None:
        return lambda: None
    slots = [
        (name, s)
        for name, s in (("WorkflowWorker", workflow_slots), ("ActivityWorker", activity_slots))
        if s is not None
    ]

    def slot_gauges() -> list[SlotGauge]:
        # Used: tasks running. Slots a poller reserves for the length of a claim are still
        # counted available (they would read as a flicker to zero at every claim).
        return [
            SlotGauge(name, max(s.limit - len(s.inflight), 0), len(s.inflight)) for name, s in slots
        ]

    unwatch_worker = metrics.watch_worker(
        WorkerGauges(namespace, task_queue, slot_gauges, lambda: len(cache))
    )
    unwatch_store = metrics.watch_store(store.gauges, store)

    def unwatch() -> None:
        unwatch_worker()
        unwatch_store()

    return unwatch
