"""A running worker's gauges for its metrics sink, and how a workflow task closed its run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from perdure._common.commands import (
    CancelWorkflow,
    Command,
    CompleteWorkflow,
    ContinueAsNew,
    FailWorkflow,
)
from perdure._common.metrics import MetricsSink, SlotGauge, WorkerGauges, WorkflowClose

if TYPE_CHECKING:
    from perdure.worker._worker import Worker

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


def watch(metrics: MetricsSink | None, worker: Worker) -> Callable[[], None]:
    """Report the worker's slots, cache and store gauges to ``metrics`` while it runs; the
    function returned stops that."""
    if metrics is None:
        return lambda: None
    wf = worker._workflows
    kinds = []
    if wf is not None:
        kinds.append(("WorkflowWorker", worker._wft_slots))
    if worker._activities is not None:
        kinds.append(("ActivityWorker", worker._activity_slots))

    def slots() -> list[SlotGauge]:
        # Used: tasks running. Slots a poller reserves for the length of a claim are still
        # counted available (they would read as a flicker to zero at every claim).
        return [
            SlotGauge(name, max(s.limit - len(s.inflight), 0), len(s.inflight)) for name, s in kinds
        ]

    store = worker.client.store
    unwatch_worker = metrics.watch_worker(
        WorkerGauges(
            worker.client.namespace,
            worker.task_queue,
            slots,
            (lambda: len(wf.cache)) if wf is not None else (lambda: 0),
        )
    )
    unwatch_store = metrics.watch_store(store.gauges, store)

    def unwatch() -> None:
        unwatch_worker()
        unwatch_store()

    return unwatch
