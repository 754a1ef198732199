"""Local activities in a worker: run inside the workflow task that scheduled them, retried
here, their outcomes fed back to the same task."""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from perdure._common.commands import ScheduleLocalActivity
from perdure._common.payload import Payload
from perdure._errors import RetryState, TimeoutError, TimeoutType
from perdure._store._types import WorkflowTask
from perdure.activity._context import (
    ActivityContext,
    Info,
    bind_sync_activity,
    run_async_activity,
)
from perdure.activity._definition import ActivityDefinition
from perdure.common._retry import RetryPolicy
from perdure.converter import DataConverter
from perdure.worker._conversion import convert_result, failure_of
from perdure.worker._interceptor import Interceptor, execute_activity

log = logging.getLogger("perdure.worker")

Outcome = tuple[int, int, Payload | None, dict[str, Any] | None]


class LocalActivities:
    """Runs the local activities of workflow tasks."""

    def __init__(
        self,
        definitions: Sequence[ActivityDefinition],
        *,
        converter: DataConverter,
        executor: concurrent.futures.Executor | None,
    ) -> None:
        self._defs = {d.name: d for d in definitions if not d.dynamic}
        self._dynamic = next((d for d in definitions if d.dynamic), None)
        self._conv = converter
        self._executor = executor
        self._shutdown = threading.Event()
        # The worker's interceptors (set by it): each attempt runs through them.
        self.interceptors: Sequence[Interceptor] = ()

    async def run_all(
        self, commands: Sequence[ScheduleLocalActivity], task: WorkflowTask
    ) -> list[Outcome]:
        return list(await asyncio.gather(*(self._run(c, task) for c in commands)))

    def _failure(self, exc: BaseException, state: RetryState) -> dict[str, Any]:
        failure = failure_of(self._conv, exc)
        failure["retry_state"] = int(state)
        return failure

    async def _run(self, command: ScheduleLocalActivity, task: WorkflowTask) -> Outcome:
        defn = self._defs.get(command.activity_type, self._dynamic)
        if defn is None:
            known = ", ".join(sorted(self._defs)) or "none"
            missing = LookupError(
                f"Local activity type {command.activity_type!r} is not registered on the "
                f"worker running workflow {task.workflow_type!r} (registered: {known}); "
                "local activities run in the workflow's worker: register it there"
            )
            return command.seq, 1, None, self._failure(missing, RetryState.NON_RETRYABLE_FAILURE)
        policy = RetryPolicy.from_dict(command.retry_policy)
        started = time.monotonic()
        deadline = (
            started + command.schedule_to_close_timeout
            if command.schedule_to_close_timeout
            else None
        )
        # The input and the outcome stay in this task, between the runtime and here: they are
        # converted, never coded (the marker recording the outcome is, with the commands).
        args = defn.call_args(
            self._conv.payload_converter.from_payloads(
                command.input, defn.input_types(len(command.input))
            )
        )
        attempt = 1
        while True:
            timeout = command.start_to_close_timeout
            if deadline is not None:
                remaining = deadline - time.monotonic()
                timeout = remaining if timeout is None else min(timeout, remaining)
            try:
                result = await asyncio.wait_for(
                    self._invoke(defn, args, command, task, attempt), timeout
                )
                # Converted only: the marker that records it goes through the codec with
                # the task's other commands.
                what = f"the result of local activity {command.activity_type!r}"
                payload = convert_result(self._conv.payload_converter, result, what)
                return command.seq, attempt, payload, None
            except builtins.TimeoutError:
                kind = (
                    TimeoutType.SCHEDULE_TO_CLOSE
                    if deadline is not None and time.monotonic() >= deadline
                    else TimeoutType.START_TO_CLOSE
                )
                error: BaseException = TimeoutError(
                    f"local activity {kind.name} timeout", type=kind
                )
            except Exception as exc:
                error = exc
            state, delay = _decide(policy, error, attempt, deadline)
            if state != RetryState.IN_PROGRESS:
                return command.seq, attempt, None, self._failure(error, state)
            await asyncio.sleep(delay)
            attempt += 1

    async def _invoke(
        self,
        defn: ActivityDefinition,
        args: list[Any],
        command: ScheduleLocalActivity,
        task: WorkflowTask,
        attempt: int,
    ) -> Any:
        now = datetime.now(UTC)
        info = Info(
            activity_id=command.activity_id,
            activity_type=command.activity_type,
            attempt=attempt,
            task_queue=task.task_queue,
            task_token=b"",
            workflow_id=task.workflow_id,
            workflow_run_id=task.run_id,
            workflow_type=task.workflow_type,
            workflow_namespace=task.namespace,
            heartbeat_details=(),
            heartbeat_timeout=None,
            schedule_to_close_timeout=_td(command.schedule_to_close_timeout),
            start_to_close_timeout=_td(command.start_to_close_timeout),
            scheduled_time=now,
            started_time=now,
            is_local=True,
        )
        ctx = ActivityContext(
            info,
            lambda details: None,
            threading.Event(),
            self._shutdown,
            payload_converter=self._conv.payload_converter,
        )
        if self.interceptors:
            return await execute_activity(
                self.interceptors,
                ctx,
                defn.fn,
                args,
                is_async=defn.is_async,
                executor=self._executor,
                headers=command.header or {},
            )
        if defn.is_async:
            return await run_async_activity(ctx, defn.fn, *args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, bind_sync_activity(ctx, defn.fn, *args))


def _decide(
    policy: RetryPolicy, error: BaseException, attempt: int, deadline: float | None
) -> tuple[RetryState, float]:
    if getattr(error, "non_retryable", False) or (
        isinstance(error, TimeoutError) and error.type == TimeoutType.SCHEDULE_TO_CLOSE
    ):
        return RetryState.NON_RETRYABLE_FAILURE, 0.0
    kind = getattr(error, "type", None) if hasattr(error, "non_retryable") else None
    name = kind if isinstance(kind, str) else type(error).__name__
    if name in (policy.non_retryable_error_types or ()):
        return RetryState.NON_RETRYABLE_FAILURE, 0.0
    if policy.maximum_attempts and attempt >= policy.maximum_attempts:
        return RetryState.MAXIMUM_ATTEMPTS_REACHED, 0.0
    delay = policy.backoff(attempt)
    if deadline is not None and time.monotonic() + delay > deadline:
        return RetryState.TIMEOUT, 0.0
    return RetryState.IN_PROGRESS, delay


def _td(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)
