"""Sagas: undo the steps that completed when a later one fails or the workflow is cancelled.

Each compensation is an activity registered before the step it undoes; on failure they run
last registered first (or all at once), shielded from the workflow's cancellation.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from perdure import workflow
from perdure._errors import ActivityError, ApplicationError
from perdure.activity._definition import ActivityDefinition
from perdure.common import RetryPolicy
from perdure.workflow._context import current

T = TypeVar("T")

DEFAULT_COMPENSATION_TIMEOUT = timedelta(minutes=1)


class _Unset:
    def __repr__(self) -> str:
        return "<no argument>"


_UNSET: Any = _Unset()


@dataclass(frozen=True)
class _Compensation:
    activity_type: str
    args: tuple[Any, ...]
    options: dict[str, Any]  # keyword arguments of workflow.execute_activity


class CompensationError(ApplicationError):
    """A saga's compensations did not all complete.

    Raised by :class:`Saga` after compensating, instead of the error that made it compensate,
    which is ``.cause``. An ``ApplicationError``, so it fails the workflow; the client sees an
    ``ApplicationError`` of type ``"CompensationError"`` whose ``.cause`` is the original
    error and whose ``details[0]`` is a dict reporting each compensation::

        {"failed": [{"activity_type": "refund_payment", "activity_id": "4",
                     "error_type": "GatewayDown", "message": "gateway down"}],
         "compensated": ["cancel_shipment"], "not_run": ["release_inventory"]}

    Attributes:
        failures: the ``ActivityError`` of each compensation that failed for good (retries
            exhausted, non-retryable or timed out), in the order they were run.
        compensated: the activity types of the compensations that completed.
        not_run: the activity types of the compensations left out because an earlier one
            failed (never with ``continue_with_error`` or ``parallel_compensation``).
    """

    def __init__(
        self,
        message: str,
        *details: Any,
        failures: Sequence[ActivityError] = (),
        compensated: Sequence[str] = (),
        not_run: Sequence[str] = (),
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, *details, cause=cause)
        self.failures = tuple(failures)
        self.compensated = tuple(compensated)
        self.not_run = tuple(not_run)


class Saga:
    """Compensations for the steps of a workflow, run when a later step fails.

    Register each compensation *before* the step it undoes: if the step fails half way, or
    times out after doing its work, its compensation still runs. A compensation must
    therefore be safe to run when its step did nothing, and like every activity it may run
    more than once: give it the key the step used (the order id), not the step's result.

    Leaving ``async with saga:`` with an error that fails the workflow (an ``ActivityError``,
    ``ApplicationError`` or other ``FailureError``, or a type in
    ``workflow_failure_exception_types``) or with the workflow's cancellation runs the
    compensations registered so far, last registered first, then re-raises that error, so a
    cancelled workflow still ends ``CANCELED``. Any other exception is a bug that fails only
    the workflow task, to be retried once the code is fixed; compensating for it would undo
    steps of a workflow that goes on, so the saga lets it through untouched. Leaving the block
    normally discards the compensations. ``await saga.compensate()`` runs them explicitly, for
    ``try``/``except`` code.

    Compensations are activities: recorded in history, retried by their retry policy
    (Temporal's default, without an attempt limit, unless given one), never run again once
    completed, and replayed exactly. They are shielded from the workflow's cancellation: a
    cancellation that arrives while they run waits until they are done and is then raised as
    ``asyncio.CancelledError``.

    A compensation that fails for good (a non-retryable error, its attempts or
    ``schedule_to_close_timeout`` used up) stops the chain, leaving the earlier ones unrun,
    unless ``continue_with_error`` is set; either way the saga then raises
    :class:`CompensationError`, carrying the original error as ``.cause`` and each failure.

    Args:
        parallel_compensation: start every compensation at once and wait for all of them,
            instead of one at a time in reverse order. Use it when the undo steps do not
            depend on each other; none is skipped when another fails.
        continue_with_error: when a compensation fails, still run the remaining ones, then
            report every failure.
        start_to_close_timeout: each compensation attempt's timeout, unless
            :meth:`add_compensation` gives one.
        schedule_to_close_timeout: each compensation's overall timeout, retries included,
            unless :meth:`add_compensation` gives one (default: none, retry until it works).
        retry_policy: how compensations retry, unless :meth:`add_compensation` gives one
            (default: ``RetryPolicy()``, 1 s doubling to 100 s, no attempt limit).
        task_queue: where compensations run (default: the workflow's task queue).

    Example::

        @workflow.defn
        class BookTrip:
            @workflow.run
            async def run(self, trip: Trip) -> str:
                async with Saga() as saga:
                    saga.add_compensation(cancel_car, trip)  # before its step
                    await workflow.execute_activity(
                        book_car, trip, start_to_close_timeout=timedelta(seconds=10))
                    saga.add_compensation(cancel_hotel, trip)
                    await workflow.execute_activity(
                        book_hotel, trip, start_to_close_timeout=timedelta(seconds=10))
                return "booked"  # if book_hotel fails: cancel_hotel, cancel_car, re-raise
    """

    def __init__(
        self,
        *,
        parallel_compensation: bool = False,
        continue_with_error: bool = False,
        start_to_close_timeout: timedelta | None = DEFAULT_COMPENSATION_TIMEOUT,
        schedule_to_close_timeout: timedelta | None = None,
        retry_policy: RetryPolicy | None = None,
        task_queue: str | None = None,
    ) -> None:
        self.parallel_compensation = parallel_compensation
        self.continue_with_error = continue_with_error
        self._defaults: dict[str, Any] = {
            "start_to_close_timeout": start_to_close_timeout,
            "schedule_to_close_timeout": schedule_to_close_timeout,
            "retry_policy": retry_policy,
            "task_queue": task_queue,
        }
        self._pending: list[_Compensation] = []
        self._compensated: list[str] = []

    @property
    def compensated(self) -> Sequence[str]:
        """The activity types of the compensations that have completed, in that order."""
        return tuple(self._compensated)

    def add_compensation(
        self,
        activity: Callable[..., Any] | str,
        arg: Any = _UNSET,
        *,
        args: Sequence[Any] = (),
        task_queue: str | None = None,
        schedule_to_close_timeout: timedelta | None = None,
        schedule_to_start_timeout: timedelta | None = None,
        start_to_close_timeout: timedelta | None = None,
        heartbeat_timeout: timedelta | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        """Register the activity that undoes the next step; call it before that step.

        The arguments are those of ``workflow.execute_activity``; options left out come from
        the :class:`Saga`. Nothing runs now: the activity is scheduled only if the saga
        compensates.

        Args:
            activity: an ``@activity.defn`` function (or method), or a registered name.
            arg: its single argument (or use ``args``).
            args: its arguments.

        Raises:
            TypeError: ``activity`` is not an activity.
            ValueError: both ``arg`` and ``args``, or no start-to-close or schedule-to-close
                timeout here or on the saga.

        Example::

            saga.add_compensation(refund_payment, order, retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=5)))
        """
        if isinstance(activity, str):
            activity_type = activity
        else:
            activity_type = ActivityDefinition.from_callable(activity).name
        if arg is not _UNSET:
            if args:
                raise ValueError("Give either arg or args, not both")
            args = (arg,)
        given = {
            "task_queue": task_queue,
            "schedule_to_close_timeout": schedule_to_close_timeout,
            "schedule_to_start_timeout": schedule_to_start_timeout,
            "start_to_close_timeout": start_to_close_timeout,
            "heartbeat_timeout": heartbeat_timeout,
            "retry_policy": retry_policy,
        }
        options = {
            key: value if value is not None else self._defaults.get(key)
            for key, value in given.items()
        }
        if (
            options["start_to_close_timeout"] is None
            and options["schedule_to_close_timeout"] is None
        ):
            raise ValueError(
                f"Compensation {activity_type!r} needs start_to_close_timeout or "
                "schedule_to_close_timeout (on add_compensation or on the Saga)"
            )
        self._pending.append(_Compensation(activity_type, tuple(args), options))

    async def compensate(self) -> None:
        """Run the compensations registered so far, shielded from cancellation, and forget
        them (a second call runs only those added since).

        Called while handling an exception, it records that exception as the ``.cause`` of
        a :class:`CompensationError`.

        Raises:
            CompensationError: a compensation failed for good.
            asyncio.CancelledError: the workflow was cancelled while they ran.

        Example::

            try:
                saga.add_compensation(release_inventory, order)
                await workflow.execute_activity(reserve_inventory, order, ...)
            except ActivityError:
                await saga.compensate()
                raise
        """
        await self._compensate(sys.exception())

    async def __aenter__(self) -> Saga:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self._pending.clear()
            return
        if not isinstance(exc, asyncio.CancelledError) and not current().fails_workflow(exc):
            return  # a bug: the workflow task fails and is retried, nothing to undo yet
        await self._compensate(exc)
        # Returning lets exc propagate: the workflow fails, or ends cancelled, as it would have.

    async def _compensate(self, error: BaseException | None) -> None:
        pending, self._pending = self._pending[::-1], []
        if not pending:
            return
        run = self._run_all(pending) if self.parallel_compensation else self._run_chain(pending)
        (failures, not_run), cancelled = await _shielded(run)
        if failures:
            raise self._error(failures, not_run, error)
        if cancelled and not isinstance(error, asyncio.CancelledError):
            raise asyncio.CancelledError  # the cancellation was deferred, not swallowed

    async def _run_chain(
        self, pending: list[_Compensation]
    ) -> tuple[list[tuple[_Compensation, ActivityError]], list[_Compensation]]:
        failures = []
        for i, compensation in enumerate(pending):
            failure = await self._run_one(compensation)
            if failure is not None:
                failures.append((compensation, failure))
                if not self.continue_with_error:
                    return failures, pending[i + 1 :]
        return failures, []

    async def _run_all(
        self, pending: list[_Compensation]
    ) -> tuple[list[tuple[_Compensation, ActivityError]], list[_Compensation]]:
        # gather starts them in list order, so the commands are in the same order on replay.
        outcomes = await asyncio.gather(*(self._run_one(c) for c in pending))
        failed = [(c, f) for c, f in zip(pending, outcomes, strict=True) if f is not None]
        return failed, []

    async def _run_one(self, compensation: _Compensation) -> ActivityError | None:
        try:
            await workflow.execute_activity(
                compensation.activity_type, args=compensation.args, **compensation.options
            )
        except ActivityError as err:
            workflow.logger.warning(
                "Compensation %s failed: %s", compensation.activity_type, _reason(err)
            )
            return err
        self._compensated.append(compensation.activity_type)
        return None

    def _error(
        self,
        failures: list[tuple[_Compensation, ActivityError]],
        not_run: list[_Compensation],
        error: BaseException | None,
    ) -> CompensationError:
        failed = "; ".join(f"{c.activity_type}: {_reason(err)}" for c, err in failures)
        message = f"Compensation failed: {failed}"
        if not_run:
            message += "; not run: " + ", ".join(c.activity_type for c in not_run)
        report = {
            "failed": [
                {
                    "activity_type": c.activity_type,
                    "activity_id": err.activity_id,
                    "error_type": _error_type(err.cause or err),
                    "message": _reason(err),
                }
                for c, err in failures
            ],
            "compensated": list(self._compensated),
            "not_run": [c.activity_type for c in not_run],
        }
        return CompensationError(
            message,
            report,
            failures=[err for _, err in failures],
            compensated=self._compensated,
            not_run=[c.activity_type for c in not_run],
            cause=error,
        )


async def _shielded(coro: Coroutine[Any, Any, T]) -> tuple[T, bool]:
    """Run ``coro`` to its end even if the awaiting task is cancelled meanwhile; return its
    result and whether a cancellation arrived (to be raised by the caller afterwards)."""
    task = asyncio.get_running_loop().create_task(coro, name="saga compensation")
    cancelled = False
    while True:
        try:
            return await asyncio.shield(task), cancelled
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True


def _reason(err: ActivityError) -> str:
    cause = err.cause if err.cause is not None else err
    return str(cause) or type(cause).__name__


def _error_type(exc: BaseException) -> str:
    return exc.type if isinstance(exc, ApplicationError) else type(exc).__name__
