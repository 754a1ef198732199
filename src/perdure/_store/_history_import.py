"""Bringing a history exported as JSON back into a database, for inspection and replay
(``perdure history import``): a bug report's history, an archived run.

The imported run is closed: if the history ends with a closing event it keeps that status;
if it was exported while open, a ``WorkflowExecutionTerminated`` event saying so is added, so
that no worker here ever runs it (its activities, timers and children are not in this
database). Its events keep their ids and times; still, it is created now, so it becomes the
latest run of its workflow id (describe, result() and history without a run id, the id reuse
policy): the latest run is the one created last, whatever its start time says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perdure._common.events import EventType, HistoryEvent
from perdure._common.status import WorkflowExecutionStatus
from perdure._errors import PerdureError, WorkflowAlreadyStartedError
from perdure._store import _visibility as visibility
from perdure._store._effects import Effects
from perdure._store._executions import _CLOSE_STATUS
from perdure._store._tx import Tx
from perdure._store._types import Execution


class HistoryImportError(PerdureError):
    """The history cannot be imported (malformed, or its run is already in the database)."""


async def import_history(
    tx: Tx,
    namespace: str,
    workflow_id: str,
    run_id: str,
    events: Sequence[HistoryEvent],
    note: str,
    now: float,
    fx: Effects,
) -> Execution:
    """Insert a closed run holding ``events`` (see the module's docstring)."""
    if not events or events[0].event_type is not EventType.WORKFLOW_EXECUTION_STARTED:
        raise HistoryImportError("The history does not start with WorkflowExecutionStarted")
    if [e.event_id for e in events] != list(range(1, len(events) + 1)):
        raise HistoryImportError("The history's event ids are not 1, 2, 3, ... in order")
    if await tx.get_execution(run_id) is not None:
        raise HistoryImportError(
            f"Run {run_id} is already in this database; import it under another id "
            "(--workflow-id) to keep both"
        )
    started = events[0].attributes
    open_run = await tx.get_open_execution(namespace, workflow_id)
    if open_run is not None:
        raise WorkflowAlreadyStartedError(workflow_id, open_run.workflow_type, run_id=run_id)
    ex = Execution(
        run_id=run_id,
        namespace=namespace,
        workflow_id=workflow_id,
        workflow_type=started["workflow_type"],
        task_queue=started["task_queue"],
        status=WorkflowExecutionStatus.RUNNING,
        next_event_id=len(events) + 1,
        start_time=events[0].event_time,
        task_timeout=started.get("task_timeout") or 10.0,
        memo=started.get("memo"),
        attempt=started.get("attempt") or 1,
        first_run_id=started.get("first_execution_run_id") or run_id,
        parent=started.get("parent"),
        priority=started.get("priority"),
    )
    memo = dict(ex.memo or {})
    attributes: dict[str, Any] = dict(started.get("search_attributes") or {})
    for event in events:
        if event.event_type is EventType.WORKFLOW_PROPERTIES_MODIFIED:
            for key, value in (event.attributes.get("memo") or {}).items():
                if value is None:
                    memo.pop(key, None)
                else:
                    memo[key] = value
        elif event.event_type is EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            attributes.update(event.attributes.get("search_attributes") or {})
    ex.memo = memo or None
    await tx.insert_execution(ex)
    ex.history_size = await tx.append_events(run_id, list(events))
    last = events[-1]
    if last.event_type not in _CLOSE_STATUS:
        attrs = {"reason": note, "identity": "perdure history import"}
        ex.history_size += await tx.append_events(
            run_id,
            [HistoryEvent(ex.next_event_id, EventType.WORKFLOW_EXECUTION_TERMINATED, now, attrs)],
        )
        ex.next_event_id += 1
        last = HistoryEvent(0, EventType.WORKFLOW_EXECUTION_TERMINATED, now, attrs)
    ex.status = _CLOSE_STATUS[last.event_type]
    ex.close_time = last.event_time
    ex.close_event = {"event_type": last.event_type.value, "attributes": last.attributes}
    await visibility.set_attributes(tx, ex, {k: v for k, v in attributes.items() if v})
    await tx.update_execution(ex)
    fx.changed = True
    return ex
