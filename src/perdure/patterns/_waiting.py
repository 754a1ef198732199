"""Waiting for a person or an outside system inside a workflow: :func:`wait_until`, with a
timeout, reminders and an escalation chain, all on durable timers."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from perdure import workflow

_ZERO = timedelta(0)


@dataclass(frozen=True)
class Reminder:
    """A nudge repeated while :func:`wait_until` waits: ``action`` runs every ``every``,
    counted from the start of the wait and again from each escalation step.

    ``action`` takes no argument; it may return an awaitable (an activity, a coroutine),
    which is awaited. Example::

        Reminder(every=timedelta(hours=4), action=self.remind)
        Reminder(every=timedelta(hours=4), action=lambda: workflow.execute_activity(
            send_reminder, self.request, start_to_close_timeout=timedelta(minutes=1)))
    """

    every: timedelta
    action: Callable[[], object]

    def __post_init__(self) -> None:
        if self.every <= _ZERO:
            raise ValueError(f"Reminder.every must be positive, got {self.every!r}")


@dataclass(frozen=True)
class Escalation:
    """One step of an escalation chain: ``action`` runs once, ``after`` since the start of
    the wait, if the wait is still on then. Steps are taken in order; the number taken is the
    wait's :attr:`WaitOutcome.escalation_level`.

    ``action`` is called as :class:`Reminder`'s is. Example::

        Escalation(after=timedelta(days=1), action=self.escalate_to_manager)
    """

    after: timedelta
    action: Callable[[], object]

    def __post_init__(self) -> None:
        if self.after < _ZERO:
            raise ValueError(f"Escalation.after must not be negative, got {self.after!r}")


@dataclass(frozen=True)
class WaitOutcome:
    """How a :func:`wait_until` ended."""

    satisfied: bool
    """The condition became true (``False``: the timeout passed first)."""
    escalation_level: int
    """How many escalation steps were taken (0: none)."""
    reminders_sent: int
    """How many reminder actions ran, of all reminders."""
    waited: timedelta
    """From the start of the wait to its end, on the workflow's clock."""

    @property
    def timed_out(self) -> bool:
        """The timeout passed before the condition became true."""
        return not self.satisfied


# What is due next: the timeout comes before an escalation step due at the same moment, and
# an escalation before a reminder.
_TIMEOUT, _ESCALATION, _REMINDER = 0, 1, 2


async def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: timedelta | float | None = None,
    reminders: Sequence[Reminder] = (),
    escalation: Sequence[Escalation] = (),
) -> WaitOutcome:
    """Wait in a workflow until ``condition()`` is true, at most ``timeout``, sending
    reminders and escalating while nobody answers. Returns how the wait ended.

    The condition reads the workflow's state, which signal and update handlers change (as
    with :func:`perdure.workflow.wait_condition`). Every deadline is a durable timer, so the
    wait goes on across worker restarts, and replays the same.

    - ``timeout`` (a ``timedelta`` or seconds; ``None``: no limit) ends the wait with
      ``satisfied=False``. A timeout is an outcome here, not an exception.
    - Each :class:`Escalation` step runs once, ``after`` since the start, in order.
    - Each :class:`Reminder` runs every ``every``, counted from the start and again from
      each escalation step (so no reminder is sent at the moment of an escalation).

    Actions run one at a time, inside the wait: keep them short (send a message). The
    deadlines do not move while one runs; a step that falls due meanwhile runs next, and
    reminders whose moment passed meanwhile are skipped. A decision that arrives during an
    action ends the wait when the action returns. An exception from an action (an
    ``ActivityError`` once the activity's retries are spent) ends the wait and propagates.

    Example::

        outcome = await wait_until(
            lambda: self.decision is not None,
            timeout=timedelta(days=4),
            reminders=[Reminder(every=timedelta(hours=8), action=self.remind)],
            escalation=[Escalation(after=timedelta(days=2), action=self.escalate)],
        )
        if outcome.timed_out:
            self.decision = "rejected"

    Raises:
        ValueError: ``timeout`` is negative, or the escalation steps are not in order of
            ``after``.
    """
    limit = _as_timedelta(timeout)
    steps = list(escalation)
    if any(a.after > b.after for a, b in itertools.pairwise(steps)):
        raise ValueError(
            "wait_until: list the escalation steps in the order they happen (by `after`), "
            f"got {[str(s.after) for s in steps]}"
        )
    start = workflow.now()
    level = 0
    sent = 0
    next_reminder = [r.every for r in reminders]
    reached = _ZERO  # the latest deadline waited out (the clock may read a hair earlier)

    def outcome(satisfied: bool) -> WaitOutcome:
        return WaitOutcome(satisfied, level, sent, workflow.now() - start)

    while True:
        if condition():
            return outcome(True)
        due: list[tuple[timedelta, int, int]] = [
            (at, _REMINDER, i) for i, at in enumerate(next_reminder)
        ]
        if level < len(steps):
            due.append((steps[level].after, _ESCALATION, level))
        if limit is not None:
            due.append((limit, _TIMEOUT, 0))
        if not due:
            await workflow.wait_condition(condition)
            return outcome(True)
        at, kind, index = min(due)
        elapsed = max(workflow.now() - start, reached)
        if at > elapsed:
            try:
                await workflow.wait_condition(condition, timeout=at - elapsed)
            except TimeoutError:  # asyncio.TimeoutError, the same class since Python 3.11
                reached = at
                continue
            return outcome(True)
        if kind == _TIMEOUT:
            return outcome(False)
        if kind == _ESCALATION:
            level += 1
            await _run(steps[index].action)
            next_reminder = [at + r.every for r in reminders]
        else:
            sent += 1
            await _run(reminders[index].action)
            next_reminder[index] = at + reminders[index].every
        # Reminders whose moment passed while an action ran are skipped, not sent in a burst.
        elapsed = max(workflow.now() - start, reached)
        for i, r in enumerate(reminders):
            if next_reminder[i] <= elapsed:
                next_reminder[i] += r.every * ((elapsed - next_reminder[i]) // r.every + 1)


async def _run(action: Callable[[], object]) -> None:
    result = action()
    if inspect.isawaitable(result):
        await result


def _as_timedelta(value: timedelta | float | None) -> timedelta | None:
    if value is None:
        return None
    delta = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if delta < _ZERO:
        raise ValueError(f"wait_until: timeout must not be negative, got {value!r}")
    return delta
