"""Activities in a worker: run each attempt, heartbeat it, report its outcome."""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from perdure._common.backoff import Retry, transient
from perdure._common.clock import Clock
from perdure._common.failure import EngineFailure
from perdure._common.metrics import MetricsSink
from perdure._errors import ApplicationError, ApplicationErrorCategory, PayloadSizeError
from perdure._errors import CancelledError as FailureCancelledError
from perdure._store import Store
from perdure._store._types import ActivityTask, StaleTaskError
from perdure.activity._context import (
    ActivityContext,
    CompleteAsyncError,
    Info,
    bind_sync_activity,
    run_async_activity,
)
from perdure.activity._definition import ActivityDefinition
from perdure.common._priority import Priority
from perdure.converter import DataConverter
from perdure.converter._limits import check_payloads
from perdure.converter._visitor import decode_within, encode_within
from perdure.worker._conversion import encode_result, failure_of, loggable
from perdure.worker._heartbeat import Heartbeater
from perdure.worker._interceptor import Interceptor, execute_activity

log = logging.getLogger("perdure.worker")

_REAL_CLOCK = Clock()

# How long an outcome the database did not take is offered again, for an activity without a
# start-to-close timeout (with one, until it runs out: then its fence refuses it anyway).
OUTCOME_RETRY_SECONDS = 60.0


class OutcomeRecorder(Protocol):
    """Records an attempt's outcome (the worker's eager dispatch, ``worker/_eager``: with
    ``eager``, the workflow task it schedules may go straight back to the worker)."""

    async def record_outcome(
        self, task: ActivityTask, outcome: Outcome, value: Any, *, eager: bool
    ) -> None: ...


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _td(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


class Outcome(enum.Enum):
    """How an attempt ended, with its value: a result payload (completed), a failure dict
    (failed), or the cancellation's details payloads (cancelled)."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Activities:
    """Runs activity attempts for one worker."""

    def __init__(
        self,
        store: Store,
        definitions: Sequence[ActivityDefinition],
        *,
        converter: DataConverter,
        task_queue: str,
        identity: str,
        executor: concurrent.futures.Executor | None,
        recorder: OutcomeRecorder,
    ) -> None:
        self._store = store
        # Records each attempt's outcome: the worker's eager dispatch.
        self.recorder = recorder
        self._defs = {d.name: d for d in definitions if not d.dynamic}
        self._dynamic = next((d for d in definitions if d.dynamic), None)
        self._conv = converter
        self._task_queue = task_queue
        self._identity = identity
        self._executor = executor
        self.worker_shutdown = threading.Event()
        # The worker's interceptors (set by it): each attempt runs through them.
        self.interceptors: Sequence[Interceptor] = ()
        # The test kit's crash injection: called at points where a crash is interesting.
        self.crash_hook: CrashHook | None = None
        # Attempts handed to an outside system (async completion): a crash leaves them be.
        self.handed_off: set[tuple[str, int]] = set()
        self.metrics: MetricsSink | None = None
        # The attempts running now, by (run id, activity seq).
        self.running: dict[tuple[str, int], _Attempt] = {}

    def cancel_requested(self, run_id: str, seq: int) -> None:
        """The workflow asked to cancel an activity this worker may be running."""
        attempt = self.running.get((run_id, seq))
        if attempt is not None:
            attempt.beat.poke()

    async def run(self, task: ActivityTask) -> None:
        if self.metrics is not None:
            self.metrics.activity_started(
                task.token.namespace,
                task.task_queue,
                task.activity_type,
                task.started_time - task.scheduled_time,
            )
        await _Attempt(self, task).run()


class _Attempt:
    """One attempt of an activity on this worker: it runs the code, learns of cancellation
    (from its heartbeats), and reports how it ended."""

    def __init__(self, acts: Activities, task: ActivityTask) -> None:
        self._acts = acts
        self._conv = acts._conv
        self._store = acts._store
        self.task = task
        self.key = (task.token.run_id, task.token.seq)
        self._loop = asyncio.get_running_loop()
        self.cancelled = threading.Event()
        # The asyncio task running async code, cancelled with the attempt.
        self._code: asyncio.Task[Any] | None = None
        # Futures of wait_for_cancelled() calls, resolved here on the loop (no thread waits
        # on the event: one left waiting by an activity that finished would block exit).
        self._waiters: list[asyncio.Future[None]] = []
        self.beat = Heartbeater(self._store, self._conv, task, self._loop, self._on_cancel)

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            # Its heartbeater calls back into it and its code's task holds its context: break
            # those cycles, so that the attempt is freed now, not by the garbage collector.
            self._code = None
            self.beat.forget_owner()

    async def _run(self) -> None:
        acts, task = self._acts, self.task
        defn = acts._defs.get(task.activity_type, acts._dynamic)
        if defn is None:
            await self._not_registered()
            return
        try:
            args = defn.call_args(
                await self._conv.decode(task.input, defn.input_types(len(task.input)))
            )
            details = await self._conv.decode(task.heartbeat_details)
        except Exception as exc:
            await self.report(Outcome.FAILED, self._failure(exc))
            return
        acts.running[self.key] = self
        try:
            result = await self._execute(defn, self._context(defn, details), args)
        except CompleteAsyncError:
            self.beat.stop()
            await self._store.activity_completes_async(task.token)
            acts.handed_off.add(self.key)
            return
        except asyncio.CancelledError:
            if not await self._stopped():
                raise
            return
        except BaseException as exc:
            await self._failed(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            acts.running.pop(self.key, None)
            self.beat.stop()
        await self._completed(result)

    async def _not_registered(self) -> None:
        acts, task = self._acts, self.task
        known = ", ".join(sorted(acts._defs)) or "none"
        message = (
            f"Activity type {task.activity_type!r} is not registered on this worker (task "
            f"queue {acts._task_queue!r}; registered: {known}). Register it with "
            "Worker(activities=[...])."
        )
        log.error(message)
        await self.report(Outcome.FAILED, EngineFailure(message, "NotRegisteredError").to_dict())

    def _context(self, defn: ActivityDefinition, details: list[Any]) -> ActivityContext:
        task, token = self.task, self.task.token
        info = Info(
            activity_id=task.activity_id,
            activity_type=task.activity_type,
            attempt=task.attempt,
            task_queue=task.task_queue,
            task_token=token.encode(),
            workflow_id=token.workflow_id,
            workflow_run_id=token.run_id,
            workflow_type=task.workflow_type,
            workflow_namespace=token.namespace,
            heartbeat_details=details,
            heartbeat_timeout=_td(task.heartbeat_timeout),
            schedule_to_close_timeout=_td(task.schedule_to_close_timeout),
            start_to_close_timeout=_td(task.start_to_close_timeout),
            scheduled_time=_utc(task.scheduled_time),
            started_time=_utc(task.started_time),
            priority=Priority.from_dict(task.priority),
        )
        return ActivityContext(
            info,
            self.beat.heartbeat,
            self.cancelled,
            self._acts.worker_shutdown,
            self._cancel_waiter if defn.is_async else None,
            self._conv.payload_converter,
        )

    async def _execute(self, defn: ActivityDefinition, ctx: ActivityContext, args: Any) -> Any:
        """Run the activity's code (through the worker's interceptors, if it has any)."""
        acts, loop = self._acts, self._loop
        if acts.interceptors:
            headers = await decode_within(self._conv._store_codec, self.task.header)
            inner = loop.create_task(
                execute_activity(
                    acts.interceptors,
                    ctx,
                    defn.fn,
                    args,
                    is_async=defn.is_async,
                    executor=acts._executor,
                    headers=headers,
                )
            )
            if defn.is_async:  # a sync one learns of cancellation through its heartbeats
                self._code = inner
            return await inner
        if defn.is_async:
            self._code = loop.create_task(run_async_activity(ctx, defn.fn, *args))
            return await self._code
        return await loop.run_in_executor(acts._executor, bind_sync_activity(ctx, defn.fn, *args))

    def _on_cancel(self, *, stale: bool) -> None:
        """The workflow cancelled the attempt, or its task went stale (heartbeats said so);
        called on the event loop's thread."""
        self.cancelled.set()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self._code is not None and not self._code.done():
            self._code.cancel()

    def _cancel_waiter(self) -> asyncio.Future[None]:
        waiter = self._loop.create_future()
        if self.cancelled.is_set():
            waiter.set_result(None)
        else:
            self._waiters.append(waiter)
        return waiter

    # -- how it ended --------------------------------------------------------------------------
    async def _stopped(self) -> bool:
        """The code was cancelled: by the workflow (reported as cancelled) or by the worker
        shutting down (a failure, to be retried). False when neither: the worker's own task
        was cancelled, and the attempt is left to its lease."""
        await self.beat.final_details()
        if self.cancelled.is_set():
            await self.report(Outcome.CANCELLED, [])
        elif self._acts.worker_shutdown.is_set():
            shut_down = RuntimeError("Worker shut down while the activity ran")
            await self.report(Outcome.FAILED, self._failure(shut_down))
        else:
            return False
        return True

    async def _failed(self, exc: BaseException) -> None:
        await self.beat.final_details()
        if self.cancelled.is_set() and isinstance(exc, FailureCancelledError):
            await self.report(Outcome.CANCELLED, await self._conv.encode(list(exc.details)))
        else:
            _log_failed_attempt(self.task, exc, self._conv)
            await self.report(Outcome.FAILED, self._failure(exc))

    async def _completed(self, result: Any) -> None:
        task, crash_hook = self.task, self._acts.crash_hook
        what = f"the result of activity {task.activity_type!r}"
        try:
            payload = await encode_result(self._conv, result, what)
            check_payloads([payload], what, logger=log)
        except PayloadSizeError as exc:
            # Retrying would produce the same oversized result: fail for good.
            failure = self._failure(exc)
            failure["non_retryable"] = True
            await self.report(Outcome.FAILED, failure)
            return
        except Exception as exc:
            await self.report(Outcome.FAILED, self._failure(exc))
            return
        if crash_hook is not None:
            await crash_hook("before_activity_completes", task.activity_type, task)
        await self.report(Outcome.COMPLETED, payload)
        if crash_hook is not None:
            await crash_hook("after_activity_completes", task.activity_type, task)

    def _failure(self, exc: BaseException) -> dict[str, Any]:
        return failure_of(self._conv, exc)

    # -- reporting it ------------------------------------------------------------------------
    async def report(self, outcome: Outcome, value: Any) -> None:
        """Record the outcome, again with backoff while the database does not answer."""
        acts, task = self._acts, self.task
        if acts.metrics is not None and outcome is not Outcome.CANCELLED:
            acts.metrics.activity_done(
                task.token.namespace,
                task.task_queue,
                task.activity_type,
                self._store.clock.now() - task.started_time,
                outcome is Outcome.FAILED,
            )
        if outcome is Outcome.FAILED:
            value = await encode_within(self._conv._store_codec, value)
        error = await self._record(outcome, value, eager=True)
        if error is None or not transient(error):
            return
        # The database did not answer: the outcome may or may not be recorded. Record it
        # again (a recorded one is refused by its fence, harmlessly) rather than leave the
        # attempt to run again once its lease runs out.
        retry = Retry(log, f"Recording the outcome of activity {task.activity_id}")
        give_up = _REAL_CLOCK.now() + (task.start_to_close_timeout or OUTCOME_RETRY_SECONDS)
        while error is not None and transient(error) and _REAL_CLOCK.now() < give_up:
            await asyncio.sleep(retry.delay(error))
            error = await self._record(outcome, value, eager=False)
        if error is None:
            retry.recovered()

    async def _record(self, outcome: Outcome, value: Any, *, eager: bool) -> BaseException | None:
        """Record the attempt's outcome once; the error that kept it from being recorded,
        if it may be worth trying again (None: recorded, or refused for good)."""
        task = self.task
        try:
            await self._acts.recorder.record_outcome(task, outcome, value, eager=eager)
        except StaleTaskError as exc:
            log.info("Activity %s outcome dropped: %s", task.activity_id, exc)
        except Exception as exc:
            if self._store.closed:
                log.warning(
                    "The outcome of activity %s was not recorded: its worker's client was "
                    "closed (it runs again once its lease runs out)",
                    task.activity_id,
                )
            elif transient(exc):
                return exc
            else:
                log.exception("Could not record the outcome of activity %s", task.activity_id)
        return None


def _log_failed_attempt(task: ActivityTask, exc: BaseException, conv: DataConverter) -> None:
    """Temporal's worker logs each failed attempt at WARNING; an expected failure
    (``ApplicationErrorCategory.BENIGN``) at DEBUG."""
    benign = isinstance(exc, ApplicationError) and exc.category == ApplicationErrorCategory.BENIGN
    what, exc_info = loggable(conv, exc)
    log.log(
        logging.DEBUG if benign else logging.WARNING,
        "Activity %s (%s, attempt %d, workflow %s) failed: %s",
        task.activity_type,
        task.activity_id,
        task.attempt,
        task.token.workflow_id,
        what,
        exc_info=exc_info,
    )


# (point, subject, task): where a worker is (e.g. "before_activity_completes", the activity
# type, its task). A hook that decides to crash the worker does not return normally.
CrashHook = Callable[[str, Any, Any], Awaitable[None]]
