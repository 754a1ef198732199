"""How a workflow ended, or that it has not yet: ``perdure server``'s result route, which
waits at most a given time where ``WorkflowHandle.result()`` waits for good.

A run's outcome follows its successors as ``result()`` does: a run that continued as new,
failed or timed out into a retry, or was reset, ends in the run that took its place.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from perdure._errors import CancelledError, TerminatedError, WorkflowFailureError
from perdure._errors import TimeoutError as WorkflowTimeoutError
from perdure.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
)

# Runs followed at most: a chain of continue-as-new is followed one run at a time.
_MAX_HOPS = 10_000


@dataclass(frozen=True)
class Outcome:
    """``status`` is ``RUNNING`` while the last run is open; ``result`` when it completed;
    ``failure`` (the ``WorkflowFailureError``'s cause) when it did not."""

    status: str
    run_id: str
    result: Any = None
    failure: BaseException | None = None


def closed_status(cause: BaseException | None) -> str:
    """The status a run that ended with ``cause`` closed in."""
    if isinstance(cause, CancelledError):
        return "CANCELED"
    if isinstance(cause, TerminatedError):
        return "TERMINATED"
    if isinstance(cause, WorkflowTimeoutError):
        return "TIMED_OUT"
    return "FAILED"


async def current_run(
    client: Client, workflow_id: str, run_id: str | None
) -> WorkflowExecutionDescription:
    """The run's description, or that of the run its successors lead to (without waiting).

    Raises:
        WorkflowNotFoundError: no such workflow run.
    """
    desc = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    for _ in range(_MAX_HOPS):
        if desc.status is WorkflowExecutionStatus.RUNNING:
            return desc
        successor = desc.reset_to.new_run_id if desc.reset_to else None
        if successor is None:
            handle = client.get_workflow_handle(workflow_id, run_id=desc.run_id)
            async for event in handle.fetch_history_events(after_event_id=desc.history_length - 1):
                successor = event.attributes.get("new_run_id")
        if not successor:
            return desc
        desc = await client.get_workflow_handle(workflow_id, run_id=str(successor)).describe()
    return desc


async def outcome(client: Client, workflow_id: str, run_id: str | None, wait: float) -> Outcome:
    """How the workflow ended, waiting up to ``wait`` seconds for it to.

    Raises:
        WorkflowNotFoundError: no such workflow run.
    """
    current = await current_run(client, workflow_id, run_id)
    running = current.status is WorkflowExecutionStatus.RUNNING
    if running and wait <= 0:
        return Outcome("RUNNING", current.run_id)
    handle = client.get_workflow_handle(workflow_id, run_id=current.run_id)
    try:
        # A closed run with no successor answers at once.
        result = await (asyncio.wait_for(handle.result(), wait) if running else handle.result())
    except TimeoutError:  # asyncio's (the builtin), not the workflow's
        return Outcome("RUNNING", (await current_run(client, workflow_id, current.run_id)).run_id)
    except WorkflowFailureError as exc:
        final = await current_run(client, workflow_id, current.run_id)
        cause = exc.cause or exc
        return Outcome(closed_status(cause), final.run_id, failure=cause)
    final = await current_run(client, workflow_id, current.run_id)
    return Outcome("COMPLETED", final.run_id, result=result)
