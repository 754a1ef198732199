"""Prometheus metrics: Temporal's SDK metrics under a ``perdure_`` prefix, plus the store's.

Give a :class:`PrometheusMetrics` to ``Client.connect(url, metrics=...)`` (every worker of that
client reports to it) or to ``Worker(..., metrics=...)``, and serve its registry as you serve
any other: ``prometheus_client.start_http_server``, your web framework's ``/metrics`` route,
or ``perdure worker --metrics-port``. Needs ``pip install 'perdure[prometheus]'``.

Example::

    from prometheus_client import start_http_server
    from perdure.contrib.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics()            # on prometheus_client.REGISTRY
    start_http_server(9464)
    client = await Client.connect("sqlite:///app.db", metrics=metrics)

The names, their labels and meaning are listed in ``docs/observability.md``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence

from perdure._common.metrics import (
    StoreGauges,
    StoreGaugeSource,
    WorkerGauges,
    WorkflowClose,
)

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Metric
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "perdure.contrib.prometheus needs prometheus_client: pip install 'perdure[prometheus]'"
    ) from exc

__all__ = ["STORE_INTERVAL", "PrometheusMetrics"]

log = logging.getLogger("perdure.metrics")

# How often the store gauges are read while a worker reports them (seconds).
STORE_INTERVAL = 10.0

# Seconds. Workflow tasks and activities: a millisecond to ten minutes; whole runs: to a week.
_TASK_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 600.0,
)  # fmt: skip
_RUN_BUCKETS = (
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0,
    86400.0, 7 * 86400.0,
)  # fmt: skip

_WF = ("namespace", "task_queue", "workflow_type")
_ACT = ("namespace", "task_queue", "activity_type")


class _Counter:
    """A counter per label values, kept as plain numbers: every call comes from the event
    loop's thread, and a scrape (perhaps from the HTTP server's thread) reads a copy."""

    def __init__(self, name: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, key: tuple[str, ...]) -> None:
        values = self.values
        values[key] = values.get(key, 0.0) + 1.0

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for key, value in self.values.copy().items():
            family.add_metric(key, value)
        return family


class _Histogram:
    """A histogram per label values: a count per bucket (not cumulative) and a sum."""

    def __init__(
        self, name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
    ) -> None:
        self.name, self.doc, self.labels, self.buckets = name, doc, labels, buckets
        self.values: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, key: tuple[str, ...], value: float) -> None:
        entry = self.values.get(key)
        if entry is None:
            entry = self.values[key] = ([0] * (len(self.buckets) + 1), [0.0])
        # A value equal to a bound falls in that bucket (Prometheus's le: less or equal).
        entry[0][bisect.bisect_left(self.buckets, value)] += 1
        entry[1][0] += value

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        bounds = [*(_bound(b) for b in self.buckets), "+Inf"]
        for key, (counts, total) in self.values.copy().items():
            cumulative = list(itertools.accumulate(counts[:]))
            family.add_metric(key, list(zip(bounds, cumulative, strict=True)), total[0])
        return family


def _bound(value: float) -> str:
    return repr(float(value))


class PrometheusMetrics:
    """A metrics sink on a ``prometheus_client`` registry.

    Args:
        registry: where the metrics are registered; ``None`` for ``prometheus_client.REGISTRY``.
            One ``PrometheusMetrics`` per registry (share it between clients and workers).
        store_interval: how often, in seconds, a running worker reads the store gauges
            (:meth:`update_store_gauges` reads them at once).
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, store_interval: float = STORE_INTERVAL
    ) -> None:
        self.registry = REGISTRY if registry is None else registry
        self.store_interval = store_interval
        self._closed = {
            close: _Counter(
                f"perdure_workflow_{close.value}",
                f"Runs a workflow task closed: {close.value.replace('_', ' ')}.",
                _WF,
            )
            for close in WorkflowClose
        }
        self._endtoend = _Histogram(
            "perdure_workflow_endtoend_latency",
            "Seconds from a run's start to the workflow task that closed it.",
            _WF,
            _RUN_BUCKETS,
        )
        self._wft_latency = _Histogram(
            "perdure_workflow_task_execution_latency",
            "Seconds a worker took to run and record a workflow task.",
            _WF,
            _TASK_BUCKETS,
        )
        self._wft_failed = _Counter(
            "perdure_workflow_task_execution_failed",
            "Workflow tasks that failed (the run stays open; the task is retried).",
            _WF,
        )
        self._act_latency = _Histogram(
            "perdure_activity_execution_latency",
            "Seconds from an activity attempt's start to its outcome (completed or failed).",
            _ACT,
            _TASK_BUCKETS,
        )
        self._act_s2s = _Histogram(
            "perdure_activity_schedule_to_start_latency",
            "Seconds from an activity attempt's scheduling to a worker starting it.",
            _ACT,
            _TASK_BUCKETS,
        )
        self._act_failed = _Counter(
            "perdure_activity_execution_failed",
            "Activity attempts that failed (retried or not).",
            _ACT,
        )
        self._hit = _Counter(
            "perdure_sticky_cache_hit", "Workflow tasks whose run was in the worker's cache.", _WF
        )
        self._miss = _Counter(
            "perdure_sticky_cache_miss",
            "Workflow tasks whose run was not in the worker's cache (replayed).",
            _WF,
        )
        self._lock = threading.Lock()
        self._workers: list[WorkerGauges] = []
        self._stores: dict[int, _StoreWatch] = {}
        self._snapshots: dict[int, StoreGauges] = {}
        try:
            self.registry.register(_Collector(self))
        except ValueError as exc:
            raise ValueError(
                f"perdure's metrics are already registered on this registry ({exc}): make one "
                "PrometheusMetrics per registry and share it, or give each a "
                "CollectorRegistry() of its own"
            ) from exc

    def _events(self) -> list[_Counter | _Histogram]:
        return [
            *self._closed.values(),
            self._endtoend,
            self._wft_latency,
            self._wft_failed,
            self._act_latency,
            self._act_s2s,
            self._act_failed,
            self._hit,
            self._miss,
        ]

    # -- the sink (perdure._common.metrics.MetricsSink) -----------------------------------------
    def workflow_task(
        self, namespace: str, task_queue: str, workflow_type: str, seconds: float
    ) -> None:
        self._wft_latency.observe((namespace, task_queue, workflow_type), seconds)

    def workflow_task_failed(self, namespace: str, task_queue: str, workflow_type: str) -> None:
        self._wft_failed.inc((namespace, task_queue, workflow_type))

    def workflow_closed(
        self,
        namespace: str,
        task_queue: str,
        workflow_type: str,
        how: WorkflowClose,
        endtoend_seconds: float,
    ) -> None:
        key = (namespace, task_queue, workflow_type)
        self._closed[how].inc(key)
        self._endtoend.observe(key, max(endtoend_seconds, 0.0))

    def sticky_cache(self, namespace: str, task_queue: str, workflow_type: str, hit: bool) -> None:
        (self._hit if hit else self._miss).inc((namespace, task_queue, workflow_type))

    def activity_started(
        self, namespace: str, task_queue: str, activity_type: str, schedule_to_start: float
    ) -> None:
        self._act_s2s.observe((namespace, task_queue, activity_type), max(schedule_to_start, 0.0))

    def activity_done(
        self, namespace: str, task_queue: str, activity_type: str, seconds: float, failed: bool
    ) -> None:
        key = (namespace, task_queue, activity_type)
        self._act_latency.observe(key, max(seconds, 0.0))
        if failed:
            self._act_failed.inc(key)

    def watch_worker(self, gauges: WorkerGauges) -> Callable[[], None]:
        with self._lock:
            self._workers.append(gauges)

        def unwatch() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._workers.remove(gauges)

        return unwatch

    def watch_store(self, source: StoreGaugeSource, key: object) -> Callable[[], None]:
        watch = self._stores.get(id(key))
        if watch is None:
            watch = self._stores[id(key)] = _StoreWatch(self, id(key), source)
        watch.users += 1

        def unwatch() -> None:
            watch.users -= 1
            if watch.users == 0:
                watch.stop()
                self._stores.pop(watch.key, None)
                with self._lock:
                    self._snapshots.pop(watch.key, None)

        return unwatch

    # -- the store gauges -----------------------------------------------------------------------
    async def update_store_gauges(self, source: StoreGaugeSource | None = None) -> None:
        """Read the store gauges now: of ``source`` (``Store.gauges`` of a client's store,
        e.g. ``client.store.gauges``), or of every store a running worker reports."""
        if source is not None:
            # A bound method (store.gauges) is a new object each time: key by its store.
            self._set_snapshot(id(getattr(source, "__self__", source)), await source())
            return
        for watch in list(self._stores.values()):
            self._set_snapshot(watch.key, await watch.source())

    def _set_snapshot(self, key: int, snapshot: StoreGauges) -> None:
        with self._lock:
            self._snapshots[key] = snapshot

    def _state(self) -> tuple[list[WorkerGauges], list[StoreGauges]]:
        with self._lock:
            return list(self._workers), list(self._snapshots.values())


class _StoreWatch:
    """Reads one store's gauges every ``store_interval`` seconds while a worker runs."""

    def __init__(self, metrics: PrometheusMetrics, key: int, source: StoreGaugeSource) -> None:
        self.key = key
        self.source = source
        self.users = 0
        self._metrics = metrics
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="perdure.metrics.store"
        )

    async def _run(self) -> None:
        while True:
            try:
                self._metrics._set_snapshot(self.key, await self.source())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next read may succeed; metrics must not stop work
                log.warning("Could not read the store gauges: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self._metrics.store_interval)

    def stop(self) -> None:
        self._task.cancel()


class _Collector(Collector):
    """What the registry collects: the counters and histograms, and the gauges that are a
    state, read when scraped (slots, the cache, the store's)."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        for event in self._metrics._events():
            yield event.family()
        yield from self._gauges()

    def collect(self) -> Iterator[Metric]:
        for event in self._metrics._events():
            yield event.family()
        workers, snapshots = self._metrics._state()
        yield from self._gauges(workers, snapshots)

    def _gauges(
        self, workers: Sequence[WorkerGauges] = (), snapshots: Sequence[StoreGauges] = ()
    ) -> Iterator[GaugeMetricFamily]:
        q = ["namespace", "task_queue"]
        available = GaugeMetricFamily(
            "perdure_worker_task_slots_available",
            "Tasks a worker could take now, by worker_type (WorkflowWorker, ActivityWorker).",
            labels=[*q, "worker_type"],
        )
        used = GaugeMetricFamily(
            "perdure_worker_task_slots_used",
            "Tasks a worker is running now, by worker_type.",
            labels=[*q, "worker_type"],
        )
        cache = GaugeMetricFamily(
            "perdure_sticky_cache_size",
            "Runs a worker keeps in memory (its sticky cache).",
            labels=q,
        )
        for w in workers:
            for slot in w.slots():
                available.add_metric([w.namespace, w.task_queue, slot.worker_type], slot.available)
                used.add_metric([w.namespace, w.task_queue, slot.worker_type], slot.used)
            cache.add_metric([w.namespace, w.task_queue], w.sticky_cache_size())
        yield from (available, used, cache)
        yield from _store_families(snapshots)


def _store_families(snapshots: Sequence[StoreGauges]) -> Iterator[GaugeMetricFamily]:
    backlog = GaugeMetricFamily(
        "perdure_task_queue_backlog",
        "Tasks ready to run that no worker holds, by task queue and kind.",
        labels=["namespace", "task_queue", "kind"],
    )
    age = GaugeMetricFamily(
        "perdure_task_queue_backlog_age_seconds",
        "How long the oldest ready task of a task queue and kind has waited.",
        labels=["namespace", "task_queue", "kind"],
    )
    open_runs = GaugeMetricFamily(
        "perdure_workflows_open",
        "Open workflow runs, by type.",
        labels=["namespace", "workflow_type"],
    )
    failing = GaugeMetricFamily(
        "perdure_workflow_tasks_failing",
        "Open runs whose last workflow task failed or timed out (stuck until fixed).",
        labels=["namespace", "workflow_type"],
    )
    timers = GaugeMetricFamily("perdure_timers_pending", "Durable timers not yet fired.")
    lag = GaugeMetricFamily(
        "perdure_schedule_lag_seconds",
        "How late the most overdue schedule of a namespace is (0: none is late).",
        labels=["namespace"],
    )
    seen: set[object] = set()
    for snap in snapshots:
        for row in snap.backlog:
            key = (row.namespace, row.task_queue, row.kind)
            if ("b", key) in seen:
                continue
            seen.add(("b", key))
            backlog.add_metric(list(key), row.count)
            age.add_metric(list(key), max(snap.now - row.oldest_ready_at, 0.0))
        for (ns, wtype), n in snap.workflows_open.items():
            if ("o", ns, wtype) not in seen:
                seen.add(("o", ns, wtype))
                open_runs.add_metric([ns, wtype], n)
                failing.add_metric([ns, wtype], snap.workflow_tasks_failing.get((ns, wtype), 0))
        for ns, due in snap.schedule_due_since.items():
            if ("s", ns) not in seen:
                seen.add(("s", ns))
                lag.add_metric([ns], max(snap.now - due, 0.0))
    if snapshots:
        timers.add_metric([], snapshots[0].timers_pending)
    yield from (backlog, age, open_runs, failing, timers, lag)
