"""Activities as workflow code sees them: scheduled by command, resolved by history events,
cancelled according to their cancellation type."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from perdure._common.commands import (
    Command,
    RecordLocalActivity,
    RequestCancelActivity,
    ScheduleActivity,
    ScheduleLocalActivity,
)
from perdure._common.events import EventType, HistoryEvent
from perdure._common.payload import Payload
from perdure._errors import ActivityError, CancelledError, RetryState
from perdure.converter import FailureConverter, PayloadConverter
from perdure.workflow._info import ActivityCancellationType, ActivityHandle

RESOLVING_EVENTS = frozenset(
    {
        EventType.ACTIVITY_TASK_COMPLETED,
        EventType.ACTIVITY_TASK_FAILED,
        EventType.ACTIVITY_TASK_TIMED_OUT,
        EventType.ACTIVITY_TASK_CANCELED,
    }
)


@dataclass(slots=True)
class _Activity:
    seq: int
    activity_type: str
    activity_id: str
    future: asyncio.Future[Payload]
    cancellation_type: int
    result_type: Any
    cancel_requested: bool = False


class Activities:
    """The activities one workflow run has scheduled and not yet seen resolved."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        payloads: PayloadConverter,
        failures: FailureConverter,
        add_command: Callable[[Command], None],
        default_task_queue: str,
    ) -> None:
        self._loop = loop
        self._payloads = payloads
        self._failures = failures
        self._add_command = add_command
        self._task_queue = default_task_queue
        self._pending: dict[int, _Activity] = {}
        self._seq = 0
        self._local: dict[int, _Activity] = {}
        self._local_seq = 0
        # Outcomes of local activities recorded by the task being replayed, by sequence.
        self.recorded_local: dict[int, dict[str, Any]] = {}

    def start(
        self,
        activity_type: str,
        args: Sequence[Any],
        *,
        task_queue: str | None,
        schedule_to_close_timeout: float | None,
        schedule_to_start_timeout: float | None,
        start_to_close_timeout: float | None,
        heartbeat_timeout: float | None,
        retry_policy: dict[str, Any],
        cancellation_type: int,
        activity_id: str | None,
        result_type: Any,
        header: dict[str, Payload] | None = None,
        priority: dict[str, Any] | None = None,
        concurrency_key: str | None = None,
    ) -> ActivityHandle[Any]:
        self._seq += 1
        seq = self._seq
        command = ScheduleActivity(
            seq=seq,
            activity_id=activity_id or str(seq),
            activity_type=activity_type,
            task_queue=task_queue or self._task_queue,
            input=self._payloads.to_payloads(args),
            schedule_to_close_timeout=schedule_to_close_timeout,
            schedule_to_start_timeout=schedule_to_start_timeout,
            start_to_close_timeout=start_to_close_timeout,
            heartbeat_timeout=heartbeat_timeout,
            retry_policy=retry_policy,
            cancellation_type=cancellation_type,
            header=header,
            priority=priority,
            concurrency_key=concurrency_key,
        )
        self._add_command(command)
        act = _Activity(
            seq=seq,
            activity_type=activity_type,
            activity_id=command.activity_id,
            future=self._loop.create_future(),
            cancellation_type=cancellation_type,
            result_type=result_type,
        )
        self._pending[seq] = act
        return self._handle(act)

    def start_local(
        self,
        activity_type: str,
        args: Sequence[Any],
        *,
        schedule_to_close_timeout: float | None,
        start_to_close_timeout: float | None,
        retry_policy: dict[str, Any],
        cancellation_type: int,
        activity_id: str | None,
        result_type: Any,
        header: dict[str, Payload] | None = None,
    ) -> ActivityHandle[Any]:
        self._local_seq += 1
        seq = self._local_seq
        act = _Activity(
            seq=seq,
            activity_type=activity_type,
            activity_id=activity_id or f"local-{seq}",
            future=self._loop.create_future(),
            cancellation_type=cancellation_type,
            result_type=result_type,
        )
        self._local[seq] = act
        marker = self.recorded_local.get(seq)
        if marker is not None:  # replaying: the outcome is in history, do not run it again
            self._add_command(
                self.resolve_local(
                    seq, marker.get("attempt", 1), marker.get("result"), marker.get("failure")
                )
            )
        else:
            self._add_command(
                ScheduleLocalActivity(
                    seq=seq,
                    activity_id=act.activity_id,
                    activity_type=activity_type,
                    input=self._payloads.to_payloads(args),
                    schedule_to_close_timeout=schedule_to_close_timeout,
                    start_to_close_timeout=start_to_close_timeout,
                    retry_policy=retry_policy,
                    header=header,
                )
            )
        return self._handle(act)

    def resolve_local(
        self, seq: int, attempt: int, result: Payload | None, failure: dict[str, Any] | None
    ) -> RecordLocalActivity:
        """Apply a local activity's outcome; returns the marker that records it."""
        act = self._local.pop(seq)
        marker = RecordLocalActivity(
            seq, act.activity_id, act.activity_type, attempt, result, failure
        )
        if not act.future.done():
            if failure is None:
                act.future.set_result(result if result is not None else Payload())
            else:
                act.future.set_exception(
                    ActivityError(
                        "Local activity failed",
                        activity_type=act.activity_type,
                        activity_id=act.activity_id,
                        retry_state=RetryState(failure.get("retry_state", 0)),
                        cause=self._failures.from_failure(failure, self._payloads),
                    )
                )
        return marker

    def resolve(self, event: HistoryEvent) -> None:
        """Apply an activity's outcome event."""
        a = event.attributes
        act = self._pending.pop(a["seq"], None)
        if act is None or act.future.done():
            return
        if event.event_type is EventType.ACTIVITY_TASK_COMPLETED:
            act.future.set_result(a["result"])
        else:
            act.future.set_exception(self._error(act, event))

    def _handle(self, act: _Activity) -> ActivityHandle[Any]:
        handle: ActivityHandle[Any] = ActivityHandle(self._await(act), loop=self._loop)
        handle._cancel_hook = lambda: self._cancel(act)
        return handle

    async def _await(self, act: _Activity) -> Any:
        payload = await act.future
        return self._payloads.from_payload(payload, act.result_type)

    def _cancel(self, act: _Activity) -> bool:
        """The handle was cancelled (by the code, or by the workflow's own cancellation)."""
        if act.future.done():
            return False
        cancelled = ActivityError(
            "Activity cancelled",
            activity_type=act.activity_type,
            activity_id=act.activity_id,
            retry_state=RetryState.CANCEL_REQUESTED,
            cause=CancelledError("Activity cancelled"),
        )
        if act.cancellation_type == ActivityCancellationType.ABANDON:
            self._pending.pop(act.seq, None)
            act.future.set_exception(cancelled)
            return True
        if not act.cancel_requested and act.seq in self._pending:
            act.cancel_requested = True
            self._add_command(RequestCancelActivity(act.seq))
        if act.cancellation_type == ActivityCancellationType.TRY_CANCEL or act.seq in self._local:
            # Its eventual outcome is of no interest any more.
            self._pending.pop(act.seq, None)
            act.future.set_exception(cancelled)
        # WAIT_CANCELLATION_COMPLETED: the activity's own outcome settles the handle.
        return True

    def _error(self, act: _Activity, event: HistoryEvent) -> ActivityError:
        a = event.attributes
        cause: BaseException
        if event.event_type is EventType.ACTIVITY_TASK_CANCELED:
            cause = CancelledError(
                "Activity cancelled", *self._payloads.from_payloads(a.get("details", []))
            )
            message = "Activity task cancelled"
        else:
            cause = self._failures.from_failure(a["failure"], self._payloads)
            message = (
                "Activity task timed out"
                if event.event_type is EventType.ACTIVITY_TASK_TIMED_OUT
                else "Activity task failed"
            )
        return ActivityError(
            message,
            scheduled_event_id=a.get("scheduled_event_id", 0),
            activity_type=act.activity_type,
            activity_id=act.activity_id,
            retry_state=RetryState(a.get("retry_state", 0)),
            cause=cause,
        )
