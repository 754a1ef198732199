"""Workflow tasks in a worker: the sticky cache, running tasks, answering queries."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

from perdure._common.backoff import keep_trying, transient
from perdure._common.commands import (
    Command,
    CompleteWorkflow,
    ScheduleActivity,
    ScheduleLocalActivity,
)
from perdure._common.events import HistoryEvent, decode_attributes, encode_attributes
from perdure._common.failure import EngineFailure
from perdure._common.identifiers import storable_text
from perdure._common.metrics import MetricsSink, WorkflowClose
from perdure._errors import (
    ClientClosedError,
    PayloadSizeError,
    PerdureError,
)
from perdure._runtime import QueryFailed, WorkflowRunner, WorkflowTaskFailure
from perdure._store import Store
from perdure._store._executions import HISTORY_BYTES_LIMIT, HISTORY_EVENT_LIMIT
from perdure._store._notify import Flag
from perdure._store._types import QueryResult, QueryTask, StaleTaskError, WorkflowTask
from perdure.converter import DataConverter
from perdure.converter._limits import check_payloads
from perdure.converter._visitor import (
    decode_events,
    decode_within,
    encode_commands,
    encode_within,
)
from perdure.worker._activity_worker import CrashHook
from perdure.worker._conversion import loggable
from perdure.worker._hand_back import hand_back
from perdure.worker._leases import HeldTasks
from perdure.worker._local_activities import LocalActivities
from perdure.worker._metrics import closing
from perdure.workflow._definition import WorkflowDefinition
from perdure.workflow._interceptor import WorkflowInboundInterceptor

log = logging.getLogger("perdure.worker")
# How long a query's answer is tried again while the store fails (clients wait 30 s).
QUERY_RETRY_SECONDS = 10.0

# How long a cached run waiting on an activity of this worker's own is kept from eviction
# while the cache is full (see ``WorkflowTasks.room_for_new``).
AWAITING_SECONDS = 5.0

# Past these a run's history is large enough to warn about (Temporal's thresholds).
HISTORY_WARN_EVENTS = 10_240
HISTORY_WARN_BYTES = 10 * 1024 * 1024


class TaskRecorder(Protocol):
    """Records a workflow task's commands (the worker's eager dispatch, ``worker/_eager``:
    it leases their activities to the worker and keeps the instance, see ``keep``)."""

    async def complete_workflow_task(
        self, task: WorkflowTask, runner: WorkflowRunner, commands: Sequence[Command]
    ) -> int | None: ...


class WorkflowTasks:
    """Runs workflow tasks for one worker, keeping running instances in an LRU cache so a
    task applies only the new events; a cache miss replays the whole history."""

    def __init__(
        self,
        store: Store,
        definitions: Sequence[WorkflowDefinition],
        *,
        converter: DataConverter,
        namespace: str,
        task_queue: str,
        identity: str,
        max_cached: int,
        failure_exception_types: Sequence[type[BaseException]],
        guard: bool,
        recorder: TaskRecorder,
        local_activities: LocalActivities | None = None,
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._defs = {d.name: d for d in definitions if not d.dynamic}
        self._dynamic = next((d for d in definitions if d.dynamic), None)
        self._converter = converter
        self._namespace = namespace
        self._task_queue = task_queue
        self._identity = self.identity = identity
        self._max_cached = max_cached
        self._failure_types = tuple(failure_exception_types)
        self._guard = guard
        self.cache: collections.OrderedDict[str, WorkflowRunner] = collections.OrderedDict()
        # Cached runs whose last task scheduled activities this worker runs, and when.
        self._awaiting: dict[str, float] = {}
        # Set when a run leaves the cache (room for a new one).
        self.room = Flag()
        # Instances out of the cache while a task runs, to be cached again once it is recorded
        # and counted against the room for new runs: after a claim, and in a commit (see
        # _eager._InCommit) those that will be kept awaiting an activity of this worker's.
        self.instances_pending = 0
        self._local = local_activities
        # The worker's workflow interceptor classes (set by it), for each run it builds.
        self.interceptor_classes: Sequence[type[WorkflowInboundInterceptor]] = ()
        # The test kit's crash injection (see _activity_worker.CrashHook).
        self.crash_hook: CrashHook | None = None
        self._warned: set[str] = set()
        self.metrics: MetricsSink | None = None
        # The tasks being processed, their leases renewed while they take long.
        self.held = HeldTasks(store)

    def runs_type(self, workflow_type: str) -> bool:
        return workflow_type in self._defs or self._dynamic is not None

    def definition(self, workflow_type: str) -> WorkflowDefinition | None:
        return self._defs.get(workflow_type, self._dynamic)

    @property
    def codec_free(self) -> bool:
        """No payload codec: a task may run inside a transaction (a codec may await)."""
        return self._converter._store_codec is None

    def keep(
        self,
        task: WorkflowTask,
        runner: WorkflowRunner,
        next_event_id: int | None,
        awaiting: bool = False,
    ) -> None:
        """The task's commands are committed (``next_event_id`` None: refused): keep the
        instance for the run's next task (``awaiting``: its commands scheduled activities
        that this worker runs)."""
        run_id = task.run_id
        if next_event_id is None or runner.closed:
            self._awaiting.pop(run_id, None)
            self.room.set()
            return  # not kept: its task's ``let_go`` ends it
        runner.recorded(next_event_id)
        self.cache[run_id] = runner
        if awaiting:
            self._awaiting[run_id] = time.monotonic()
        else:
            self._awaiting.pop(run_id, None)
        while len(self.cache) > self._max_cached:
            evicted_id, evicted = self.cache.popitem(last=False)
            self._awaiting.pop(evicted_id, None)
            evicted.dispose()

    def let_go(self, run_id: str, runner: WorkflowRunner) -> None:
        """A task (or a query) is done with ``runner``: unless it is the run's cached
        instance, kept for its next task, end its code and free it now."""
        if self.cache.get(run_id) is not runner:
            runner.dispose()

    def clear(self) -> None:
        """The worker stops: end every cached instance's code (the runs go on, replayed by
        whichever worker next has their work)."""
        while self.cache:
            self.cache.popitem(last=False)[1].dispose()
        self._awaiting.clear()

    def take(self, run_id: str) -> WorkflowRunner | None:
        """The run's cached instance, out of the cache while a task runs (``keep`` puts it
        back once the task is recorded)."""
        self._awaiting.pop(run_id, None)
        return self.cache.pop(run_id, None)

    def room_for_new(self) -> int | None:
        """How many new runs' tasks this worker may take now (None: no bound). While the run
        its cache would evict first waits on an activity this worker runs, scheduled less
        than ``AWAITING_SECONDS`` ago, only as many as the cache has room for: that result
        is coming, and evicting the run would cost a replay for it then, so a burst of
        starts larger than the cache runs depth first. A run waiting on anything else (a
        timer, a signal) is evicted as usual."""
        limit = self._max_cached
        if limit <= 0 or self._evictable_in() == 0.0:
            return None
        return max(limit - len(self.cache) - self.instances_pending, 0)

    def hold_off(self) -> float:
        """How long to wait before taking new runs' tasks (0: take them; see
        ``room_for_new``)."""
        if self.room_for_new() != 0:
            return 0.0
        # No room: in the time the run to evict next waits to become evictable, or (all of
        # them new, run in commits still being settled) a moment.
        return self._evictable_in() or 0.01

    def _evictable_in(self) -> float | None:
        """Seconds until the run the cache would evict first may be (0: now; None: the cache
        is empty)."""
        if not self.cache:
            return None
        since = self._awaiting.get(next(iter(self.cache)))
        if since is None:
            return 0.0
        return max(since + AWAITING_SECONDS - time.monotonic(), 0.0)

    def new_runner(self, defn: WorkflowDefinition, workflow_id: str, run_id: str) -> WorkflowRunner:
        return WorkflowRunner(
            defn,
            workflow_id=workflow_id,
            run_id=run_id,
            namespace=self._namespace,
            converter=self._converter,
            failure_exception_types=self._failure_types,
            guard=self._guard,
            interceptors=self.interceptor_classes,
        )

    def _unregistered(self, workflow_type: str) -> EngineFailure:
        known = ", ".join(sorted(self._defs)) or "none"
        return EngineFailure(
            f"Workflow type {workflow_type!r} is not registered on this worker (task "
            f"queue {self._task_queue!r}; registered: {known}). Register it with "
            "Worker(workflows=[...]) on a worker polling this queue.",
            "NotRegisteredError",
            kind="server",
        )

    def process(self, task: WorkflowTask) -> Coroutine[Any, Any, None]:
        """Run a task claimed or handed over: held (and its run's instance counted out of
        the cache) from now, not from when the coroutine first runs, so that the next
        claim or start already sees it."""
        self.held.hold(task)
        self.instances_pending += 1
        return self._processing(task)

    async def _processing(self, task: WorkflowTask) -> None:
        try:
            await self._process(task)
        finally:
            self.instances_pending -= 1
            self.held.release(task)

    async def _process(self, task: WorkflowTask) -> None:
        started = time.perf_counter()
        runner = self.take(task.run_id)
        defn = self._defs.get(task.workflow_type, self._dynamic)
        try:
            if defn is None:
                log.error(self._unregistered(task.workflow_type).message)
                self._count_failure(task)
                await self._store.fail_workflow_task(
                    task, self._unregistered(task.workflow_type).to_dict(), self._identity
                )
                return
            cached = runner is not None and runner.next_event_id <= task.next_event_id
            if runner is None or not cached:
                if runner is not None:
                    runner.dispose()  # behind the task (another worker ran the run's tasks)
                runner = self.new_runner(defn, task.workflow_id, task.run_id)
            self.warn_if_large(task)
            events = handed_over(task, runner.next_event_id)
            if events is None:
                events = await self._store.get_history(task.run_id, runner.next_event_id - 1)
            requested = (
                await self._store.requested_updates(task.run_id) if task.updates_requested else []
            )
            codec = self._converter._store_codec
            events = await decode_events(codec, events)
            for row in requested:
                row.input = await decode_within(codec, row.input)
                row.header = await decode_within(codec, row.header)
            try:
                commands = runner.apply(
                    events,
                    task_time=task.started_time,
                    history_size=task.history_size,
                    updates=[(r.update_id, r.name, r.input, r.header) for r in requested],
                )
                commands = await self._run_local_activities(runner, task, commands)
            except WorkflowTaskFailure as failure:
                await self._fail_task(task, failure.cause)
                return
            await encode_commands(codec, commands)
            try:
                check_command_payloads(commands, task.workflow_type)
            except PayloadSizeError as exc:
                await self._fail_task(task, exc)
                return
            next_event_id = await self._recorder.complete_workflow_task(task, runner, commands)
            if self.metrics is not None and next_event_id is not None:
                report_task(self.metrics, task, runner, started, cached, closing(commands))
        except StaleTaskError as exc:
            log.info("Dropped a stale workflow task: %s", exc)
        except ClientClosedError as exc:
            # No fault of the workflow's: its task is run again once the lease runs out.
            log.warning("Workflow task of %s was not recorded: %s", task.workflow_id, exc)
        except PerdureError as exc:
            if transient(exc):  # the database did not answer, or was busy
                await hand_back(self._store, task, exc)
                return
            # The store refused the commands (e.g. a type conflict).
            try:
                await self._fail_task(task, exc)
            except StaleTaskError:
                pass
            except PerdureError as again:
                if not transient(again):
                    raise
                await hand_back(self._store, task, again)
        except Exception:
            log.exception("Workflow task of %s failed in the worker", task.workflow_id)
        finally:
            if runner is not None:
                self.let_go(task.run_id, runner)

    async def _fail_task(self, task: WorkflowTask, cause: BaseException) -> None:
        self._count_failure(task)
        self._log_task_failure(task, cause)
        failure = await self._converter.encode_failure(cause)
        await self._store.fail_workflow_task(task, failure, self._identity)

    def _count_failure(self, task: WorkflowTask) -> None:
        if self.metrics is not None:
            self.metrics.workflow_task_failed(task.namespace, task.task_queue, task.workflow_type)

    def warn_if_large(self, task: WorkflowTask) -> None:
        events = task.next_event_id - 1
        if task.run_id in self._warned or (
            events < HISTORY_WARN_EVENTS and task.history_size < HISTORY_WARN_BYTES
        ):
            return
        self._warned.add(task.run_id)
        log.warning(
            "Workflow %s (%s) has a large history: %d events, %d KiB. Continue as new when "
            "workflow.info().is_continue_as_new_suggested(); past %d events or %d MiB the "
            "run is ended.",
            task.workflow_id,
            task.workflow_type,
            events,
            task.history_size // 1024,
            HISTORY_EVENT_LIMIT,
            HISTORY_BYTES_LIMIT // (1024 * 1024),
        )

    async def _run_local_activities(
        self, runner: WorkflowRunner, task: WorkflowTask, commands: list[Command]
    ) -> list[Command]:
        """Run the task's local activities and feed their outcomes back, until the code asks
        for no more (the task is held meanwhile, its lease renewed: see ``_leases``)."""
        while True:
            local = [c for c in commands if isinstance(c, ScheduleLocalActivity)]
            if not local:
                return commands
            if self._local is None:
                raise WorkflowTaskFailure(
                    RuntimeError("This worker has no activities registered to run locally")
                )
            outcomes = await self._local.run_all(local, task)
            commands = runner.resolve_local_activities(outcomes)

    def _log_task_failure(self, task: WorkflowTask, cause: BaseException) -> None:
        what, exc_info = loggable(self._converter, cause)
        if task.attempt == 1:
            log.error(
                "Workflow task of %s (%s) failed; the workflow stays open and the task is "
                "retried with backoff: %s",
                task.workflow_id,
                task.workflow_type,
                what,
                exc_info=exc_info,
            )
        else:
            log.warning(
                "Workflow task of %s failed again (attempt %d): %s",
                task.workflow_id,
                task.attempt,
                what,
            )

    async def answer(self, query: QueryTask) -> None:
        """Answer the query; a transient store error (the answer, or the history read) is
        tried again, for some seconds of the client's wait."""
        try:
            what = f"Answering query {query.query_id}"
            await keep_trying(lambda: self._answer(query), what, log, QUERY_RETRY_SECONDS)
        except Exception:
            log.exception("Could not record the answer to query %s", query.query_id)

    async def _answer(self, query: QueryTask) -> None:
        result: QueryResult
        try:
            codec = self._converter._store_codec
            args = await decode_within(codec, query.args)
            header = await decode_within(codec, query.header)
            # A cached instance answers if it saw every event recorded when the query was
            # sent; else (another worker ran the run's later tasks) the history is replayed.
            # No await between taking the cached one and asking it: it may be evicted.
            runner = self.cache.get(query.run_id)
            if runner is None or runner.next_event_id < query.next_event_id:
                defn = self._defs.get(query.workflow_type, self._dynamic)
                if defn is None:
                    raise QueryFailed(self._unregistered(query.workflow_type).message)
                runner = self.new_runner(defn, query.workflow_id, query.run_id)
                try:
                    events = await self._store.get_history(query.run_id)
                    events = await decode_events(codec, events)
                    runner.apply(events, task_time=None)
                    answer = runner.query(query.query_type, args, header)
                finally:
                    runner.dispose()  # replayed for the query alone
            else:
                answer = runner.query(query.query_type, args, header)
            payload = await encode_within(codec, answer)
            result = QueryResult(ok=True, result=payload, error=None)
        except QueryFailed as exc:
            result = QueryResult(ok=False, result=None, error=storable_text(str(exc)))
        except WorkflowTaskFailure as exc:
            result = QueryResult(
                ok=False, result=None, error=storable_text(f"Replay failed: {exc}")
            )
        await self._store.answer_query(query.query_id, result)


def report_task(
    metrics: MetricsSink,
    task: WorkflowTask,
    runner: WorkflowRunner,
    started: float,
    cached: bool,
    closes: WorkflowClose | None,
) -> None:
    """A workflow task was recorded: its latency, whether its run's instance was in the
    cache, and how it closed the run if it did."""
    ns, queue, wtype = task.namespace, task.task_queue, task.workflow_type
    metrics.workflow_task(ns, queue, wtype, time.perf_counter() - started)
    metrics.sticky_cache(ns, queue, wtype, cached)
    if closes is not None and runner.instance is not None:
        start = runner.instance.info().start_time.timestamp()
        metrics.workflow_closed(ns, queue, wtype, closes, task.started_time - start)


def handed_over(task: WorkflowTask, first: int) -> list[HistoryEvent] | None:
    """The events a task handed over eagerly brought, if they are all the runner lacks:
    passed through the stored form, so the code sees what a replay reading them will."""
    new = task.new_events
    if not new or new[0].event_id != first:
        return None
    return [
        HistoryEvent(e.event_id, e.event_type, e.event_time, _stored(e.attributes)) for e in new
    ]


def _stored(attributes: dict[str, Any]) -> dict[str, Any]:
    return decode_attributes(encode_attributes(attributes))


def check_command_payloads(commands: list[Command], workflow_type: str) -> None:
    for command in commands:
        if isinstance(command, ScheduleActivity):
            check_payloads(
                command.input, f"the arguments of activity {command.activity_type!r}", logger=log
            )
        elif isinstance(command, CompleteWorkflow):
            check_payloads(
                [command.result], f"the result of workflow {workflow_type!r}", logger=log
            )
