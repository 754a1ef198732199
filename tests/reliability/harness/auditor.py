"""The history auditor: invariants every run's history must keep, whatever crashed.

``audit`` returns the violations it finds (empty when the history is sound), each naming the
workflow and the events concerned, so a test can assert ``== []`` and print them all.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from typing import Any

TERMINAL = frozenset(
    {
        "WorkflowExecutionCompleted",
        "WorkflowExecutionFailed",
        "WorkflowExecutionCanceled",
        "WorkflowExecutionTerminated",
        "WorkflowExecutionContinuedAsNew",
        "WorkflowExecutionTimedOut",
    }
)
ACTIVITY_CLOSE = frozenset(
    {
        "ActivityTaskCompleted",
        "ActivityTaskFailed",
        "ActivityTaskTimedOut",
        "ActivityTaskCanceled",
    }
)
TIMER_CLOSE = frozenset({"TimerFired", "TimerCanceled"})
# Slack for comparing a fire time with an event time, both floats of seconds.
_EPSILON = 1e-6


def _type(event: Any) -> str:
    return str(getattr(event.event_type, "value", event.event_type))


def audit(workflow_id: str, events: Sequence[Any], *, closed: bool | None = None) -> list[str]:
    """The invariants a run's history breaks (``closed``: whether the run is known to be
    closed, None if unknown):

    * event ids are 1, 2, 3, ... and the first event is WorkflowExecutionStarted;
    * at most one terminal event, and nothing after it; exactly one if ``closed``;
    * every ActivityTaskScheduled has at most one close event (completed, failed, timed
      out, canceled), and every close event names a scheduled activity;
    * every TimerStarted has at most one TimerFired/TimerCanceled, and a timer fires no
      earlier than its ``fire_at``;
    * every workflow task's commands follow a WorkflowTaskCompleted.
    """
    problems: list[str] = []
    where = f"workflow {workflow_id}"
    ids = [e.event_id for e in events]
    if ids != list(range(1, len(ids) + 1)):
        problems.append(f"{where}: event ids are not contiguous from 1: {ids}")
    types = [_type(e) for e in events]
    if not types or types[0] != "WorkflowExecutionStarted":
        problems.append(f"{where}: does not begin with WorkflowExecutionStarted: {types[:3]}")
    terminal = [i for i, t in enumerate(types) if t in TERMINAL]
    if len(terminal) > 1:
        problems.append(f"{where}: {len(terminal)} terminal events: {[types[i] for i in terminal]}")
    if terminal and terminal[0] != len(types) - 1:
        problems.append(f"{where}: events after the terminal event: {types[terminal[0] :]}")
    if closed is True and not terminal:
        problems.append(f"{where}: closed, but no terminal event: {types[-3:]}")
    if closed is False and terminal:
        problems.append(f"{where}: open, but ends with {types[terminal[0]]}")
    by_id = {e.event_id: e for e in events}
    activity_closes: collections.Counter[int] = collections.Counter()
    timer_closes: collections.Counter[int] = collections.Counter()
    for e, t in zip(events, types, strict=True):
        attrs = e.attributes
        if t in ACTIVITY_CLOSE or t == "ActivityTaskStarted":
            scheduled = by_id.get(attrs.get("scheduled_event_id"))
            if scheduled is None or _type(scheduled) != "ActivityTaskScheduled":
                problems.append(f"{where}: {t} #{e.event_id} names no scheduled activity")
            if t in ACTIVITY_CLOSE:
                activity_closes[attrs.get("scheduled_event_id")] += 1
        if t in TIMER_CLOSE:
            started = by_id.get(attrs.get("started_event_id"))
            if started is None or _type(started) != "TimerStarted":
                problems.append(f"{where}: {t} #{e.event_id} names no started timer")
            else:
                timer_closes[started.event_id] += 1
                fire_at = started.attributes.get("fire_at")
                if t == "TimerFired" and fire_at is not None and e.event_time + _EPSILON < fire_at:
                    problems.append(
                        f"{where}: timer #{started.event_id} fired at {e.event_time} before "
                        f"its fire_at {fire_at}"
                    )
    for scheduled_id, n in activity_closes.items():
        if n > 1:
            problems.append(f"{where}: activity #{scheduled_id} closed {n} times")
    for started_id, n in timer_closes.items():
        if n > 1:
            problems.append(f"{where}: timer #{started_id} closed {n} times")
    return problems


def completed_activity_seqs(events: Iterable[Any]) -> collections.Counter[int]:
    """How many ActivityTaskCompleted events each activity seq has (1 each, if sound)."""
    return collections.Counter(
        e.attributes.get("seq") for e in events if _type(e) == "ActivityTaskCompleted"
    )


CHILD_CLOSE = frozenset(
    {
        "ChildWorkflowExecutionCompleted",
        "ChildWorkflowExecutionFailed",
        "ChildWorkflowExecutionCanceled",
        "ChildWorkflowExecutionTerminated",
        "ChildWorkflowExecutionTimedOut",
    }
)


def child_problems(workflow_id: str, events: Sequence[Any]) -> list[str]:
    """A parent's children, by seq: each initiated once, started at most once (and only if
    initiated), closed at most once (and only if started)."""
    problems: list[str] = []
    counts: dict[str, collections.Counter[Any]] = {
        kind: collections.Counter() for kind in ("initiated", "started", "closed")
    }
    for e in events:
        t = _type(e)
        seq = e.attributes.get("seq")
        if t == "StartChildWorkflowExecutionInitiated":
            counts["initiated"][seq] += 1
        elif t == "ChildWorkflowExecutionStarted":
            counts["started"][seq] += 1
        elif t in CHILD_CLOSE:
            counts["closed"][seq] += 1
    for kind, counter in counts.items():
        for seq, n in counter.items():
            if n > 1:
                problems.append(f"workflow {workflow_id}: child seq {seq} {kind} {n} times")
    for seq in counts["started"]:
        if seq not in counts["initiated"]:
            problems.append(f"workflow {workflow_id}: child seq {seq} started, never initiated")
    for seq in counts["closed"]:
        if seq not in counts["started"]:
            problems.append(f"workflow {workflow_id}: child seq {seq} closed, never started")
    return problems


def signals(events: Iterable[Any]) -> list[Any]:
    """The payloads of the run's WorkflowExecutionSignaled events, in history order."""
    return [e.attributes.get("input") for e in events if _type(e) == "WorkflowExecutionSignaled"]
