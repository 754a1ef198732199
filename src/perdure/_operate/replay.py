"""The pre-deploy check: replay recorded histories against the workflow code about to be
deployed, and name each run the new code would break (``perdure replay``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from perdure.client import Client, WorkflowHistory
from perdure.worker import Replayer

OPEN_WORKFLOWS = "ExecutionStatus = 'Running'"


@dataclass(frozen=True)
class ReplayOutcome:
    """One history replayed: ``error`` is why the code would break it, or None."""

    workflow_id: str
    run_id: str
    workflow_type: str
    error: Exception | None

    @property
    def ok(self) -> bool:
        return self.error is None


def workflow_type(history: WorkflowHistory) -> str:
    """The type a history's start event names ("" for an empty history)."""
    if not history.events:
        return ""
    return str(history.events[0].attributes.get("workflow_type", ""))


async def replay_each(
    replayer: Replayer, histories: Iterable[WorkflowHistory] | AsyncIterator[WorkflowHistory]
) -> AsyncIterator[ReplayOutcome]:
    """Replay each history, yielding its outcome as soon as it is known."""

    async def one(history: WorkflowHistory) -> ReplayOutcome:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        return ReplayOutcome(
            history.workflow_id, history.run_id, workflow_type(history), result.replay_failure
        )

    if isinstance(histories, AsyncIterator):
        async for history in histories:
            yield await one(history)
    else:
        for history in histories:
            yield await one(history)


def database_histories(client: Client, query: str | None) -> AsyncIterator[WorkflowHistory]:
    """The histories of the runs a visibility query matches (by default, every open run)."""
    return client.list_workflows(query or OPEN_WORKFLOWS).map_histories()
