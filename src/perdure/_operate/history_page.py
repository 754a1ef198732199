"""A run's history a page at a time, so that a history of 10,000 events is read in bounded
pieces (the HTTP API's history route; the UI's event list), optionally waiting for new
events of a running workflow (a live view)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from perdure._common.events import CLOSE_EVENTS, HistoryEvent
from perdure.client import Client, WorkflowExecutionStatus, WorkflowHandle


@dataclass(frozen=True)
class HistoryPage:
    """Events ``after_event_id + 1 ...`` of a run, at most a page of them.

    ``more`` is true when events after these were already recorded; ``closed`` when no more
    will come: the page ends with the run's closing event (or is empty and the run is over).
    """

    workflow_id: str
    run_id: str
    events: list[HistoryEvent]
    more: bool
    closed: bool

    @property
    def last_event_id(self) -> int | None:
        return self.events[-1].event_id if self.events else None


async def _read(
    handle: WorkflowHandle[object], after_event_id: int, page_size: int
) -> tuple[list[HistoryEvent], bool]:
    """A page of events (one bounded read), and whether more were recorded after it."""
    events = handle.fetch_history_events(after_event_id=after_event_id, page_size=page_size)
    await events.fetch_next_page()
    return list(events.current_page or ()), events.next_page_token is not None


async def read_history_page(
    client: Client,
    workflow_id: str,
    run_id: str | None,
    *,
    after_event_id: int = 0,
    page_size: int = 1000,
    wait: float = 0.0,
) -> HistoryPage:
    """A page of the run's history (its latest run without ``run_id``).

    With ``wait`` > 0, a page that would be empty waits up to that many seconds for the run's
    next event.

    Raises:
        WorkflowNotFoundError: no such workflow run.
    """
    if run_id is None:
        run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    events, more = await _read(handle, after_event_id, page_size)
    closed = False
    if not events:  # nothing after the given event: is that because the run is over?
        closed = (await handle.describe()).status is not WorkflowExecutionStatus.RUNNING
    if not events and not closed and wait > 0:
        follow = handle.fetch_history_events(after_event_id=after_event_id, wait_new_event=True)
        try:
            async with asyncio.timeout(wait):
                await anext(follow, None)
        except TimeoutError:
            pass
        events, more = await _read(handle, after_event_id, page_size)
    if events:
        closed = events[-1].event_type in CLOSE_EVENTS
    return HistoryPage(workflow_id, run_id, events, more=more, closed=closed)
