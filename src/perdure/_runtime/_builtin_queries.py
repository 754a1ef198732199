"""The queries every workflow answers without a handler of its own (Temporal's built-ins).

- ``__stack_trace``: where each of the workflow's coroutines waits, one stack per task
  (file, line and function of every frame), stacks separated by a blank line.
- ``__perdure_workflow_metadata`` (also answered as Temporal's
  ``__temporal_workflow_metadata``): the workflow's type and the names and descriptions of
  the queries, signals and updates it handles (a dynamic handler is named ``""``).

They read the workflow's state as a query handler would: no command, no event.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from perdure.workflow._definition import HandlerDefinition, WorkflowDefinition

STACK_TRACE = "__stack_trace"
METADATA = "__perdure_workflow_metadata"
TEMPORAL_METADATA = "__temporal_workflow_metadata"
BUILT_IN = (STACK_TRACE, METADATA, TEMPORAL_METADATA)


@dataclass(frozen=True)
class InteractionDefinition:
    """A query, signal or update the workflow handles."""

    name: str
    description: str


@dataclass(frozen=True)
class DefinitionMetadata:
    """The workflow's type and what it handles, each list sorted by name."""

    type: str
    query_definitions: list[InteractionDefinition]
    signal_definitions: list[InteractionDefinition]
    update_definitions: list[InteractionDefinition]


@dataclass(frozen=True)
class WorkflowMetadata:
    """The answer to ``__perdure_workflow_metadata`` (Temporal's ``WorkflowMetadata``
    shape, with snake_case names)."""

    definition: DefinitionMetadata


def stack_trace(tasks: Sequence[asyncio.Task[Any]]) -> str:
    """Each task's stack, from its coroutine down to the await it is suspended at, in
    Temporal's format."""
    stacks = []
    for task in tasks:
        frames = [
            traceback.FrameSummary(f.f_code.co_filename, f.f_lineno, f.f_code.co_name)
            for f in _awaiting(task.get_coro())
        ]
        stacks.append(
            f"Stack for {task!r} (most recent call last):\n"
            + "".join(traceback.format_list(frames)).rstrip("\n")
        )
    return "\n\n".join(stacks)


def _awaiting(coro: object) -> list[FrameType]:
    """The frames of a suspended coroutine and of those it awaits, outermost first.

    (``Task.get_stack()`` gives only the outermost: a suspended coroutine's frame has no
    ``f_back``, the chain is in ``cr_await``.)
    """
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        frame = frame or getattr(coro, "ag_frame", None)
        if frame is None:  # a future, or a coroutine that has finished
            break
        frames.append(frame)
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "gi_yieldfrom", None)
            or getattr(coro, "ag_await", None)
        )
    return frames


def workflow_metadata(
    definition: WorkflowDefinition,
    workflow_type: str,
    *,
    queries: Iterable[str],
    signals: Iterable[str],
) -> WorkflowMetadata:
    """The metadata of a workflow of ``definition`` whose handlers now are ``queries`` and
    ``signals`` (those of its class and those registered at run time) and its updates."""
    return WorkflowMetadata(
        DefinitionMetadata(
            type=workflow_type,
            query_definitions=_listed(
                [*queries, *BUILT_IN], definition.queries, definition.dynamic_query
            ),
            signal_definitions=_listed(signals, definition.signals, definition.dynamic_signal),
            update_definitions=_listed(
                definition.updates, definition.updates, definition.dynamic_update
            ),
        )
    )


def _listed(
    names: Iterable[str],
    declared: Mapping[str, HandlerDefinition],
    dynamic: HandlerDefinition | None,
) -> list[InteractionDefinition]:
    descriptions = {
        name: declared[name].description if name in declared else None for name in names
    }
    if dynamic is not None:
        descriptions[""] = dynamic.description
    return [InteractionDefinition(name, descriptions[name] or "") for name in sorted(descriptions)]
