"""Step through a recorded history on the workflow code the server was given: the state the
workflow had at a chosen event (its queries' answers, and where its code waited), found by
replaying the history up to that event, as a worker would."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from perdure._common.events import COMMAND_EVENTS, EventType
from perdure._runtime import WorkflowRunner, WorkflowTaskFailure
from perdure._runtime._builtin_queries import STACK_TRACE
from perdure._runtime._runner import QueryFailed
from perdure.client import WorkflowHistory
from perdure.converter import DataConverter
from perdure.converter._visitor import decode_events
from perdure.workflow._definition import WorkflowDefinition


@dataclass(frozen=True)
class QueryAnswer:
    """One query asked of the replayed state: its result, or why it could not answer."""

    name: str
    result: Any = None
    error: str | None = None


@dataclass(frozen=True)
class ReplayedState:
    """The workflow at ``event_id``: replayed through the last workflow task completed by
    then, and the commands that task recorded (``at_event_id`` is the last event applied;
    0 if no task had completed)."""

    event_id: int
    at_event_id: int
    queries: list[QueryAnswer]
    stack_trace: str | None
    error: str | None


class WorkflowCodeMissing(LookupError):
    """The code of a history's workflow type is not among the classes the server was given."""


def definition_for(workflows: Sequence[type], workflow_type: str) -> WorkflowDefinition:
    """The definition of ``workflow_type`` among ``workflows`` (or their dynamic workflow).

    Raises:
        WorkflowCodeMissing: none runs that type.
    """
    defs = [WorkflowDefinition.from_class(w) for w in workflows]
    for d in defs:
        if not d.dynamic and d.name == workflow_type:
            return d
    dynamic = next((d for d in defs if d.dynamic), None)
    if dynamic is None:
        names = ", ".join(sorted(d.name for d in defs)) or "none"
        raise WorkflowCodeMissing(
            f"The server's workflow code has no workflow {workflow_type!r} (it has: {names})"
        )
    return dynamic


def _cut(events: Sequence[Any], event_id: int) -> int:
    """How many events to replay for the state at ``event_id``: through the last
    WorkflowTaskCompleted at or before it, and the command events that task recorded."""
    end = 0
    for i, event in enumerate(events):
        if event.event_id > event_id:
            break
        if event.event_type is EventType.WORKFLOW_TASK_COMPLETED:
            end = i + 1
            while end < len(events) and events[end].event_type in COMMAND_EVENTS:
                end += 1
    return end


async def state_at(
    history: WorkflowHistory,
    workflows: Sequence[type],
    converter: DataConverter,
    event_id: int,
) -> ReplayedState:
    """Replay ``history`` up to ``event_id`` and ask the workflow its queries that take no
    argument, and ``__stack_trace``.

    Raises:
        WorkflowCodeMissing: the server was not given the history's workflow.
    """
    if not history.events:
        return ReplayedState(event_id, 0, [], None, "The history is empty")
    defn = definition_for(workflows, str(history.events[0].attributes.get("workflow_type")))
    events = await decode_events(converter._store_codec, history.events)
    end = _cut(events, event_id)
    if end == 0:
        return ReplayedState(
            event_id, 0, [], None, f"No workflow task had completed by event {event_id}"
        )
    # Replaying is CPU work: off the event loop, so the server answers others meanwhile.
    return await asyncio.to_thread(_replay, defn, history, converter, events[:end], event_id)


def _replay(
    defn: WorkflowDefinition,
    history: WorkflowHistory,
    converter: DataConverter,
    events: Sequence[Any],
    event_id: int,
) -> ReplayedState:
    runner = WorkflowRunner(
        defn, workflow_id=history.workflow_id, run_id=history.run_id, converter=converter
    )
    try:
        return _state_at(runner, defn, converter, events, event_id)
    finally:
        # Its code ended here, in this thread: not by a later garbage collection, inside
        # whatever workflow code runs then.
        runner.dispose()


def _state_at(
    runner: WorkflowRunner,
    defn: WorkflowDefinition,
    converter: DataConverter,
    events: Sequence[Any],
    event_id: int,
) -> ReplayedState:
    at = events[-1].event_id
    try:
        runner.apply(events, task_time=None)
    except WorkflowTaskFailure as exc:
        cause = exc.cause
        return ReplayedState(event_id, at, [], None, f"{type(cause).__name__}: {cause}")
    answers = []
    for name in sorted(n for n in defn.queries if n):
        handler = defn.queries[name]
        if handler.arg_types:
            answers.append(QueryAnswer(name, error="takes arguments"))
            continue
        try:
            payload = runner.query(name, [])
            answers.append(QueryAnswer(name, converter.payload_converter.from_payload(payload)))
        except QueryFailed as exc:
            answers.append(QueryAnswer(name, error=str(exc)))
    try:
        stack = converter.payload_converter.from_payload(runner.query(STACK_TRACE, []))
    except QueryFailed as exc:
        stack = f"({exc})"
    return ReplayedState(event_id, at, answers, str(stack), None)
