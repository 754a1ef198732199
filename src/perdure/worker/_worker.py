from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Sequence, Sized
from datetime import timedelta
from typing import Any

from perdure._common import identifiers as ids
from perdure._common.backoff import Retry
from perdure._common.clock import Clock
from perdure._common.metrics import MetricsSink
from perdure._store._types import TaskKind
from perdure.activity._definition import ActivityDefinition
from perdure.client._client import Client
from perdure.client._namespace import Archiver
from perdure.worker._activity_worker import Activities, CrashHook
from perdure.worker._eager import EagerDispatch
from perdure.worker._flow import activity_claim, check_limits
from perdure.worker._interceptor import worker_interceptors, workflow_classes
from perdure.worker._lint import DeterminismLint, check_determinism
from perdure.worker._local_activities import LocalActivities
from perdure.worker._metrics import watch
from perdure.worker._slots import Slots
from perdure.worker._timers import timer_service
from perdure.worker._workflow_worker import WorkflowTasks
from perdure.workflow._definition import WorkflowDefinition

log = logging.getLogger("perdure.worker")
# Holding off new runs (a full cache, see WorkflowTasks.hold_off) is about CPU work: real time.
_REAL = Clock()


class Worker:
    """Runs workflows and activities from one task queue.

    Example::

        async with Worker(client, task_queue="orders", workflows=[OrderWorkflow],
                          activities=[reserve, charge, ship]):
            await client.execute_workflow(OrderWorkflow.run, order, id="o-1",
                                          task_queue="orders")

    Args:
        client: whose store and data converter the worker uses.
        task_queue: the queue to take tasks from.
        workflows: ``@workflow.defn`` classes.
        activities: ``@activity.defn`` functions (async ones run on the event loop, plain
            ones in ``activity_executor``, a thread pool by default).
        max_concurrent_activities: activity attempts run at once.
        max_concurrent_workflow_tasks: workflow tasks run at once.
        max_cached_workflows: running instances kept in memory; the least recently used is
            evicted past this and rebuilt by replay when it next has work. While it waits
            on an activity this worker runs, scheduled less than 5 s ago, new runs wait for
            room instead (a burst larger than the cache runs depth first).
        graceful_shutdown_timeout: how long ``shutdown()`` lets running activities finish
            before cancelling them.
        workflow_failure_exception_types: exception types that fail the workflow instead of
            only its task.
        deterministic_guard: raise on non-deterministic calls in workflow code (clock,
            randomness, I/O, threads). On by default.
        determinism_lint: read the source of ``workflows`` when the worker is built and
            report code that is not replay-safe (see ``perdure.lint``): ``"warn"`` (the
            default) logs a warning per workflow class, ``"error"`` raises
            ``DeterminismLintError``, ``"off"`` skips it.
        archiver: archives histories before retention deletes them, for the namespaces
            whose ``archive_uri`` is its ``uri`` (``file://`` URIs need none: a
            :class:`~perdure.client.FileArchiver` is made for them).
        max_task_queue_activities_per_second: activity attempts started per second by all
            the workers of the task queue together (give them all the same value).
        max_activities_per_second: activity attempts this worker starts per second.
        max_concurrent_activities_per_key: attempts of one ``concurrency_key`` running at
            once across the queue's workers (see docs/patterns.md, "Flow control").
        metrics: where the worker reports its metrics (a
            :class:`~perdure.contrib.prometheus.PrometheusMetrics`); by default the client's.
    """

    def __init__(
        self,
        client: Client,
        *,
        task_queue: str,
        workflows: Sequence[type] = (),
        activities: Sequence[Callable[..., Any]] = (),
        activity_executor: concurrent.futures.Executor | None = None,
        max_concurrent_activities: int = 100,
        max_concurrent_workflow_tasks: int = 100,
        max_cached_workflows: int = 1000,
        graceful_shutdown_timeout: timedelta = timedelta(0),
        workflow_failure_exception_types: Sequence[type[BaseException]] = (),
        interceptors: Sequence[Any] = (),
        identity: str | None = None,
        deterministic_guard: bool = True,
        determinism_lint: DeterminismLint = "warn",
        archiver: Archiver | None = None,
        max_task_queue_activities_per_second: float | None = None,
        max_activities_per_second: float | None = None,
        max_concurrent_activities_per_key: int | None = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        task_queue = ids.check_task_queue(task_queue)
        identity = ids.check_identity(identity)
        if not workflows and not activities:
            raise ValueError("Worker needs at least one workflow or activity to run")
        for name, value in (
            ("max_concurrent_activities", max_concurrent_activities),
            ("max_concurrent_workflow_tasks", max_concurrent_workflow_tasks),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1")
        flow = check_limits(
            max_task_queue_activities_per_second,
            max_activities_per_second,
            max_concurrent_activities_per_key,
        )
        if max_cached_workflows < 0:
            raise ValueError("max_cached_workflows must not be negative")
        if client.store.read_only:
            raise ValueError(
                "Worker needs a database it can change: the client opened it read-only "
                "(?mode=ro); connect without ?mode=ro"
            )
        wf_defs = [WorkflowDefinition.from_class(w) for w in workflows]
        act_defs = [ActivityDefinition.registered(a) for a in activities]
        for kind, names, dynamic in (
            (
                "workflow",
                [ids.check_workflow_type(d.name, "workflows") for d in wf_defs if not d.dynamic],
                [d.cls.__qualname__ for d in wf_defs if d.dynamic],
            ),
            (
                "activity",
                [ids.check_activity_type(d.name, "activities") for d in act_defs if not d.dynamic],
                [d.fn.__qualname__ for d in act_defs if d.dynamic],
            ),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"More than one {kind} registered as {', '.join(dupes)}")
            if len(dynamic) > 1:
                raise ValueError(
                    f"More than one dynamic {kind} registered ({', '.join(dynamic)}): a worker "
                    f"has one for the {kind} types it has no other {kind} for"
                )
        check_determinism(workflows, determinism_lint)
        self.client = client
        self.task_queue = task_queue
        client._worker_workflows.update((d.name, d.cls) for d in wf_defs)
        client._worker_failure_types.update(workflow_failure_exception_types)
        self._store = client.store
        self._archiver = archiver
        self._namespace = client.namespace
        self.identity = identity or client.identity
        self._owner = f"{self.identity}/{uuid.uuid4().hex[:12]}"
        self._graceful = graceful_shutdown_timeout.total_seconds()
        self._own_executor: concurrent.futures.ThreadPoolExecutor | None = None
        if activity_executor is None and any(not d.is_async for d in act_defs):
            activity_executor = self._own_executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=max_concurrent_activities, thread_name_prefix="perdure-activity"
            )
        self._stopping = asyncio.Event()
        self._running = False
        self._run_task: asyncio.Task[None] | None = None
        self._wft_slots = Slots(max_concurrent_workflow_tasks)
        self._activity_slots = Slots(max_concurrent_activities)
        self._claim_activities = activity_claim(self._store, *flow)
        self._eager = EagerDispatch(
            self._store,
            namespace=self._namespace,
            task_queue=task_queue,
            owner=self._owner,
            identity=self.identity,
            workflow_slots=self._wft_slots,
            activity_slots=self._activity_slots,
            activity_types=frozenset(d.name for d in act_defs if not d.dynamic),
            paced=self._claim_activities != self._store.claim_activity_tasks,
            stopping=self._stopping,
        )
        self._workflows = (
            WorkflowTasks(
                self._store,
                wf_defs,
                converter=client.data_converter,
                namespace=self._namespace,
                task_queue=task_queue,
                identity=self.identity,
                max_cached=max_cached_workflows,
                failure_exception_types=workflow_failure_exception_types,
                guard=deterministic_guard,
                recorder=self._eager,
                local_activities=(
                    LocalActivities(
                        act_defs, converter=client.data_converter, executor=activity_executor
                    )
                    if act_defs
                    else None
                ),
            )
            if wf_defs
            else None
        )
        self._activities = (
            Activities(
                self._store,
                act_defs,
                converter=client.data_converter,
                task_queue=task_queue,
                identity=self.identity,
                executor=activity_executor,
                recorder=self._eager,
            )
            if act_defs
            else None
        )
        # What the worker hands itself goes through its one eager dispatch (worker/_eager).
        self._eager.serve(self._workflows, self._activities)
        self._pollers: list[asyncio.Future[None]] = []
        self._metrics = metrics if metrics is not None else client.metrics
        for part in (self._workflows, self._activities):
            if part is not None:
                part.metrics = self._metrics
        self._use_interceptors(client, interceptors)

    def _use_interceptors(self, client: Client, interceptors: Sequence[Any]) -> None:
        chosen = worker_interceptors(client.interceptors, interceptors)
        if self._workflows is not None and chosen:
            self._workflows.interceptor_classes = workflow_classes(chosen)
            if self._workflows._local is not None:
                self._workflows._local.interceptors = chosen
        if self._activities is not None:
            self._activities.interceptors = chosen

    @property
    def is_running(self) -> bool:
        return self._running

    async def run(self) -> None:
        """Run until :meth:`shutdown` is called (or the task running this is cancelled)."""
        if self._running:
            raise RuntimeError("Worker is already running")
        self._running = True
        self._stopping.clear()
        timers = timer_service(self._store)
        timers.start(self.client.data_converter.external_storage, self._archiver)
        loops: list[Coroutine[Any, Any, None]] = []
        if self._workflows is not None:
            wf = self._workflows
            loops.append(
                self._poll(
                    TaskKind.WORKFLOW,
                    self._wft_slots,
                    self._store.claim_workflow_tasks,
                    wf.process,
                    hold_off=wf,
                )
            )
            loops.append(
                self._poll(TaskKind.QUERY, Slots(10), self._store.claim_queries, wf.answer)
            )
            loops.append(wf.held.run())
        if self._activities is not None:
            acts = self._activities
            loops.append(
                self._poll(
                    TaskKind.ACTIVITY,
                    self._activity_slots,
                    self._claim_activities,
                    acts.run,
                )
            )
        unwatch = watch(
            self._metrics, self._store, self._namespace, self.task_queue, *self._gauged()
        )
        pollers = self._pollers = [asyncio.ensure_future(c) for c in loops]
        self._eager.register()
        unsubscribe: Callable[[], None] = lambda: None  # noqa: E731
        if self._activities is not None:
            acts = self._activities
            # A cancellation requested in this process makes the running activity heartbeat
            # at once, so it learns of it without waiting for its next throttled heartbeat.
            unsubscribe = self._store.notifier.subscribe(
                "activity_cancel", lambda item: acts.cancel_requested(*item)
            )
        try:
            await self._stopping.wait()
        finally:
            self._eager.unregister()
            unsubscribe()
            unwatch()
            for p in pollers:
                p.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)
            await self._drain()
            if self._workflows is not None:
                self._workflows.clear()
            await timers.stop()
            if self._own_executor is not None:
                self._own_executor.shutdown(wait=False, cancel_futures=True)
            self._running = False

    def _gauged(self) -> tuple[Slots | None, Slots | None, Sized]:
        """What the metrics read of this worker: its slots of each kind, and its cache."""
        wf, acts = self._workflows, self._activities
        return (
            None if wf is None else self._wft_slots,
            None if acts is None else self._activity_slots,
            {} if wf is None else wf.cache,
        )

    async def _poll(
        self,
        kind: TaskKind,
        slots: Slots,
        claim: Callable[[str, str, str, Callable[[], int]], Coroutine[Any, Any, Sequence[Any]]],
        handle: Callable[[Any], Coroutine[Any, Any, None]],
        hold_off: WorkflowTasks | None = None,
    ) -> None:
        store = self._store
        key = ("queue", self._namespace, self.task_queue, kind)
        ready = store.notifier.listen(key)
        retry = Retry(log, f"Polling task queue {self.task_queue!r} for {kind.name.lower()} tasks")
        try:
            while not self._stopping.is_set():
                free = slots.free()
                if free <= 0:
                    slots.freed.clear()
                    await slots.freed.wait()
                    continue
                if hold_off is not None and (pause := hold_off.hold_off()) > 0:
                    hold_off.room.clear()
                    await _REAL.wait(hold_off.room, _REAL.now() + min(pause, 0.05))
                    continue
                ready.clear()
                limit = slots.claim_limit(None if hold_off is None else hold_off.room_for_new)
                try:
                    tasks = await claim(self._namespace, self.task_queue, self._owner, limit)
                except Exception as exc:
                    if store.closed:
                        self._store_closed()
                        return
                    await retry.pause(exc)
                    continue
                finally:
                    slots.reserved -= limit.taken
                retry.recovered()
                for task in tasks:
                    slots.launch(handle(task))
                if len(tasks) < limit.limit:
                    # The queue is drained: wait for a wake-up rather than claim again (an
                    # empty claim still takes the write lock).
                    await store.clock.wait(ready, store.clock.now() + store.poll_interval)
        finally:
            store.notifier.forget(key)

    def _store_closed(self) -> None:
        """The client was closed under the running worker: stop, saying so once."""
        if not self._stopping.is_set():
            self._stopping.set()
            log.warning(
                "Worker of task queue %r stops: its client was closed while it ran (shut "
                "workers down before closing their client)",
                self.task_queue,
            )

    async def _drain(self) -> None:
        if self._activities is not None:
            self._activities.worker_shutdown.set()
        if self._activity_slots.inflight:
            _, pending = await asyncio.wait(
                set(self._activity_slots.inflight), timeout=self._graceful
            )
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self._wft_slots.inflight:
            await asyncio.wait(set(self._wft_slots.inflight), timeout=10)

    def _set_crash_hook(self, hook: CrashHook | None) -> None:
        """Install the test kit's crash injection (see perdure.testing.CrashingWorker)."""
        if self._workflows is not None:
            self._workflows.crash_hook = hook
        if self._activities is not None:
            self._activities.crash_hook = hook

    async def _die(self, *, leases_expire: bool = True) -> None:
        """Stop as a killed process would, for the test kit's crash injection: claim nothing
        more, act as if every lease held had run out (so the work moves on without waiting
        for the lease timeouts), and abandon the tasks in flight mid-step (whatever they
        report afterwards is refused as stale). Returns without waiting for them.

        With ``leases_expire=False`` the leases stay held until they run out by the clock,
        as after a real SIGKILL (the reliability suite's stateful model runs them out)."""
        for p in self._pollers:
            p.cancel()
        await asyncio.gather(*self._pollers, return_exceptions=True)
        if leases_expire:
            held = self._activities
            keep = frozenset(held.handed_off) if held is not None else frozenset()
            await self._store.expire_leases(self._owner, keep)
        for t in (*self._wft_slots.inflight, *self._activity_slots.inflight):
            t.cancel()
        self._stopping.set()

    async def shutdown(self) -> None:
        """Stop taking tasks, let running ones finish (activities get
        ``graceful_shutdown_timeout``), and return when the worker has stopped."""
        self._stopping.set()
        if self._run_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._run_task
            self._run_task = None

    async def __aenter__(self) -> Worker:
        self._run_task = asyncio.get_running_loop().create_task(self.run(), name="perdure.worker")
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
