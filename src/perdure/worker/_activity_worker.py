"""Activities in a worker: run each attempt, heartbeat it, report its outcome."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from perdure._common.backoff import Retry, transient
from perdure._common.clock import Clock
from perdure._common.metrics import MetricsSink
from perdure._errors import ApplicationError, ApplicationErrorCategory, PayloadSizeError
from perdure._errors import CancelledError as FailureCancelledError
from perdure._store import Store
from perdure._store._eager import ContinueInCommit, EagerWorkflowTask
from perdure._store._notify import Flag
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
from perdure.worker._conversion import check_details, encode_result, failure_of, loggable
from perdure.worker._interceptor import Interceptor, execute_activity

log = logging.getLogger("perdure.worker")

_REAL_CLOCK = Clock()

# Without a heartbeat timeout, heartbeats are still sent (so details survive), this often.
DEFAULT_HEARTBEAT_INTERVAL = 30.0
# How long an outcome the database did not take is offered again, for an activity without a
# start-to-close timeout (with one, until it runs out: then its fence refuses it anyway).
OUTCOME_RETRY_SECONDS = 60.0


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _td(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


class _Heartbeater:
    """Sends an attempt's heartbeats, throttled, and learns of cancellation from them."""

    def __init__(
        self,
        store: Store,
        conv: DataConverter,
        task: ActivityTask,
        loop: asyncio.AbstractEventLoop,
        on_cancel: Any,
    ) -> None:
        self._store = store
        self._conv = conv
        self._task = task
        self._loop = loop
        self._on_cancel = on_cancel
        # Built on the event loop's thread: heartbeats from any other come from sync activities.
        self._loop_thread = threading.get_ident()
        timeout = task.heartbeat_timeout
        self._interval = (
            min(timeout * 0.8, DEFAULT_HEARTBEAT_INTERVAL)
            if timeout
            else DEFAULT_HEARTBEAT_INTERVAL
        )
        self._details: Sequence[Any] | None = None
        self._dirty = False
        self._sender: asyncio.Task[None] | None = None
        self._nudge = Flag()
        self._retry = Retry(log, f"Heartbeat of activity {task.activity_id}")
        self.used = False
        # The attempt is over (its outcome reported, or the worker gave up on it): nothing
        # is sent any more.
        self._stopped = False

    def heartbeat(self, details: Sequence[Any]) -> None:
        """Called from the activity (its loop thread or an executor thread).

        Raises:
            PayloadConverterError: details the converter cannot take, refused at the call.
        """
        if details:
            what = f"the heartbeat details of activity {self._task.activity_type!r}"
            check_details(self._conv.payload_converter, details, what)
        if threading.get_ident() == self._loop_thread:
            self._record(details)
            return
        # A sync activity whose attempt is over runs on in its thread, unseen: stop it here
        # (Temporal raises CancelledError into the thread).
        if self._stopped:
            raise FailureCancelledError("The activity attempt is over: its worker stopped it")
        try:
            self._loop.call_soon_threadsafe(self._record, details)
        except RuntimeError as exc:  # the event loop is closed
            raise FailureCancelledError("The activity's worker is gone") from exc

    def _record(self, details: Sequence[Any]) -> None:
        if self._stopped:
            return
        self.used = True
        self._details = details
        self._dirty = True
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._send_loop())

    def poke(self) -> None:
        """Send now (a cancellation may be waiting to be learned)."""
        if not self.used or self._stopped:
            return
        self._dirty = True
        if self._sender is None or self._sender.done():
            self._sender = self._loop.create_task(self._send_loop())
        else:
            self._nudge.set()

    async def _send_loop(self) -> None:
        while self._dirty and not self._stopped:
            self._dirty = False
            pause = self._interval
            try:
                payloads = await self._conv.encode(list(self._details or ()))
                cancel = await self._store.heartbeat_activity(
                    self._task.token, self._task.owner, payloads
                )
            except StaleTaskError:
                self._on_cancel(stale=True)
                return
            except Exception as exc:
                if self._store.closed:
                    return
                # Sent again after the pause, with whatever details are latest by then.
                self._dirty = True
                pause = max(pause, self._retry.delay(exc))
                cancel = False
            else:
                self._retry.recovered()
            if cancel:
                self._on_cancel(stale=False)
                return
            self._nudge.clear()
            await _REAL_CLOCK.wait(self._nudge, _REAL_CLOCK.now() + pause)

    def stop(self) -> None:
        self._stopped = True
        if self._sender is not None:
            self._sender.cancel()

    async def final_details(self) -> None:
        """Make sure the last details are stored before the attempt's outcome."""
        if self._dirty and self._details is not None:
            self.stop()
            self._dirty = False
            try:
                await self._store.heartbeat_activity(
                    self._task.token,
                    self._task.owner,
                    await self._conv.encode(list(self._details)),
                )
            except StaleTaskError:
                pass
            except Exception as exc:  # the outcome is still worth reporting
                if not self._store.closed:
                    log.warning(
                        "The last heartbeat details of activity %s were not stored: %s: %s",
                        self._task.activity_id,
                        type(exc).__name__,
                        exc,
                    )


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
    ) -> None:
        self._store = store
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
        # Set by the worker when it also runs workflows: the workflow task an outcome
        # schedules goes straight back to it (eager dispatch).
        self.offer_workflow_task: Callable[[], EagerWorkflowTask | None] = lambda: None
        self.settle_workflow_task: Callable[
            [EagerWorkflowTask, bool, ContinueInCommit | None, int | None], Awaitable[None]
        ] = _nothing
        self.continue_in_commit: Callable[[], ContinueInCommit | None] = lambda: None
        self.metrics: MetricsSink | None = None
        self.running: dict[
            tuple[str, int], tuple[asyncio.Task[Any] | None, threading.Event, _Heartbeater]
        ] = {}

    def _failure(self, exc: BaseException) -> dict[str, Any]:
        return failure_of(self._conv, exc)

    def cancel_requested(self, run_id: str, seq: int) -> None:
        """The workflow asked to cancel an activity this worker may be running."""
        entry = self.running.get((run_id, seq))
        if entry is not None:
            entry[2].poke()

    async def run(self, task: ActivityTask) -> None:
        token = task.token
        if self.metrics is not None:
            self.metrics.activity_started(
                token.namespace,
                task.task_queue,
                task.activity_type,
                task.started_time - task.scheduled_time,
            )
        defn = self._defs.get(task.activity_type, self._dynamic)
        if defn is None:
            known = ", ".join(sorted(self._defs)) or "none"
            message = (
                f"Activity type {task.activity_type!r} is not registered on this worker (task "
                f"queue {self._task_queue!r}; registered: {known}). Register it with "
                "Worker(activities=[...])."
            )
            log.error(message)
            await self._report(
                task,
                "fail",
                {
                    "message": message,
                    "kind": "application",
                    "type": "NotRegisteredError",
                    "non_retryable": False,
                    "details": [],
                    "cause": None,
                    "stack_trace": "",
                },
            )
            return
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()
        current: dict[str, asyncio.Task[Any] | None] = {"task": None}
        # Futures of wait_for_cancelled() calls, resolved here on the loop (no thread waits
        # on the event: one left waiting by an activity that finished would block exit).
        waiters: list[asyncio.Future[None]] = []

        def on_cancel(*, stale: bool) -> None:  # called on the event loop's thread
            cancelled.set()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            t = current["task"]
            if t is not None and not t.done():
                t.cancel()

        beat = _Heartbeater(self._store, self._conv, task, loop, on_cancel)
        key = (token.run_id, token.seq)
        try:
            args = defn.call_args(
                await self._conv.decode(task.input, defn.input_types(len(task.input)))
            )
            details = await self._conv.decode(task.heartbeat_details)
        except Exception as exc:
            await self._report(task, "fail", self._failure(exc))
            return

        def cancel_waiter() -> asyncio.Future[None]:
            waiter = loop.create_future()
            if cancelled.is_set():
                waiter.set_result(None)
            else:
                waiters.append(waiter)
            return waiter

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
        ctx = ActivityContext(
            info,
            beat.heartbeat,
            cancelled,
            self.worker_shutdown,
            cancel_waiter if defn.is_async else None,
            self._conv.payload_converter,
        )
        self.running[key] = (None, cancelled, beat)
        try:
            if self.interceptors:
                headers = await decode_within(self._conv._store_codec, task.header)
                inner = loop.create_task(
                    execute_activity(
                        self.interceptors,
                        ctx,
                        defn.fn,
                        args,
                        is_async=defn.is_async,
                        executor=self._executor,
                        headers=headers,
                    )
                )
                if defn.is_async:  # a sync one learns of cancellation through its heartbeats
                    current["task"] = inner
                    self.running[key] = (inner, cancelled, beat)
                result = await inner
            elif defn.is_async:
                inner = loop.create_task(run_async_activity(ctx, defn.fn, *args))
                current["task"] = inner
                self.running[key] = (inner, cancelled, beat)
                result = await inner
            else:
                result = await loop.run_in_executor(
                    self._executor, bind_sync_activity(ctx, defn.fn, *args)
                )
        except CompleteAsyncError:
            beat.stop()
            await self._store.activity_completes_async(token)
            self.handed_off.add(key)
            return
        except asyncio.CancelledError:
            await beat.final_details()
            if cancelled.is_set():
                await self._report(task, "cancelled", [])
            elif self.worker_shutdown.is_set():
                await self._report(
                    task,
                    "fail",
                    self._failure(RuntimeError("Worker shut down while the activity ran")),
                )
            else:
                raise
            return
        except BaseException as exc:
            await beat.final_details()
            if cancelled.is_set() and isinstance(exc, FailureCancelledError):
                await self._report(task, "cancelled", await self._conv.encode(list(exc.details)))
            else:
                _log_failed_attempt(task, exc, self._conv)
                await self._report(task, "fail", self._failure(exc))
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self.running.pop(key, None)
            beat.stop()
        what = f"the result of activity {task.activity_type!r}"
        try:
            payload = await encode_result(self._conv, result, what)
            check_payloads([payload], what, logger=log)
        except PayloadSizeError as exc:
            # Retrying would produce the same oversized result: fail for good.
            failure = self._failure(exc)
            failure["non_retryable"] = True
            await self._report(task, "fail", failure)
            return
        except Exception as exc:
            await self._report(task, "fail", self._failure(exc))
            return
        if self.crash_hook is not None:
            await self.crash_hook("before_activity_completes", task.activity_type, task)
        await self._report(task, "complete", payload)
        if self.crash_hook is not None:
            await self.crash_hook("after_activity_completes", task.activity_type, task)

    async def _report(self, task: ActivityTask, outcome: str, value: Any) -> None:
        if self.metrics is not None and outcome != "cancelled":
            self.metrics.activity_done(
                task.token.namespace,
                task.task_queue,
                task.activity_type,
                self._store.clock.now() - task.started_time,
                outcome == "fail",
            )
        if outcome == "fail":
            value = await encode_within(self._conv._store_codec, value)
        error = await self._record(task, outcome, value, eager=True)
        if error is None or not transient(error):
            return
        # The database did not answer: the outcome may or may not be recorded. Record it
        # again (a recorded one is refused by its fence, harmlessly) rather than leave the
        # attempt to run again once its lease runs out.
        retry = Retry(log, f"Recording the outcome of activity {task.activity_id}")
        give_up = _REAL_CLOCK.now() + (task.start_to_close_timeout or OUTCOME_RETRY_SECONDS)
        while error is not None and transient(error) and _REAL_CLOCK.now() < give_up:
            await asyncio.sleep(retry.delay(error))
            error = await self._record(task, outcome, value, eager=False)
        if error is None:
            retry.recovered()

    async def _record(
        self, task: ActivityTask, outcome: str, value: Any, *, eager: bool
    ) -> BaseException | None:
        """Record the attempt's outcome once; the error that kept it from being recorded,
        if it may be worth trying again (None: recorded, or refused for good)."""
        offer = self.offer_workflow_task() if eager else None
        # A result may have the workflow's next task run and recorded in its own commit.
        then = self.continue_in_commit() if offer is not None and outcome == "complete" else None
        committed = False
        next_event_id = None
        try:
            if outcome == "complete":
                next_event_id = await self._store.complete_activity(
                    task.token, task.owner, value, self._identity, offer, then
                )
            elif outcome == "fail":
                await self._store.fail_activity(
                    task.token, task.owner, value, self._identity, offer
                )
            else:
                await self._store.activity_cancelled(
                    task.token, task.owner, value, self._identity, offer
                )
            committed = True
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
        finally:
            if offer is not None:
                await self.settle_workflow_task(offer, committed, then, next_event_id)
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


async def _nothing(*args: Any) -> None:
    return None


# (point, subject, task): where a worker is (e.g. "before_activity_completes", the activity
# type, its task). A hook that decides to crash the worker does not return normally.
CrashHook = Callable[[str, Any, Any], Awaitable[None]]
