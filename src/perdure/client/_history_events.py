"""Reading a run's history a page at a time: what ``WorkflowHandle.fetch_history_events``
returns."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from perdure._common.clock import Clock
from perdure._common.events import HistoryEvent
from perdure._errors import InvalidArgumentError
from perdure.client._connection import Connection
from perdure.converter._external import resolve_events

# Following a history waits on the real clock, whatever clock the store runs on.
_REAL = Clock()
FOLLOW_POLL_INTERVAL = 0.2

DEFAULT_PAGE_SIZE = 1000


class WorkflowHistoryEventAsyncIterator:
    """What :meth:`WorkflowHandle.fetch_history_events` returns: an async iterator of the
    run's events in order, read from the database a page at a time, so that a long history
    is never held whole.

    :meth:`fetch_next_page`, :attr:`current_page` and :attr:`next_page_token` read one page
    at a time (a web page of a long history, say); a token continues the same run's history
    after its page, also from a later ``fetch_history_events(next_page_token=...)``.

    Example::

        events = handle.fetch_history_events(page_size=200)
        await events.fetch_next_page()
        show(events.current_page, more=events.next_page_token)
    """

    def __init__(
        self,
        connection: Connection,
        workflow_id: str,
        run_id: str | None,
        *,
        page_size: int,
        next_page_token: bytes | None,
        wait_new_event: bool,
        after_event_id: int,
    ) -> None:
        """Made by :meth:`WorkflowHandle.fetch_history_events`, not directly."""
        self._connection = connection
        self._workflow_id = workflow_id
        self._page_size = page_size
        self._wait = wait_new_event
        self._run_id = run_id
        self._last = after_event_id
        self._next_page_token = next_page_token
        if next_page_token is not None:
            self._run_id, self._last = _read_token(next_page_token, workflow_id, run_id)
        self._current_page: Sequence[HistoryEvent] | None = None
        self._current_page_index = 0

    @property
    def current_page_index(self) -> int:
        """Index in :attr:`current_page` of the event the next ``__anext__`` returns."""
        return self._current_page_index

    @property
    def current_page(self) -> Sequence[HistoryEvent] | None:
        """The page fetched last, or ``None`` before the first fetch."""
        return self._current_page

    @property
    def next_page_token(self) -> bytes | None:
        """The token of the page after the current one (``None`` once the last event
        recorded so far has been fetched)."""
        return self._next_page_token

    async def fetch_next_page(self, *, page_size: int | None = None) -> None:
        """Fetch the next events into :attr:`current_page` (an empty page after the last).

        Args:
            page_size: this page's size, instead of the iterator's.

        Raises:
            WorkflowNotFoundError: no such workflow run.
        """
        page_size = page_size or self._page_size
        c = self._connection
        if self._run_id is None:  # the latest run, as it is at the first page
            self._run_id = (await c.execution(self._workflow_id, None)).run_id
        elif self._current_page is None:
            await c.execution(self._workflow_id, self._run_id)  # raises for a run of another id
        # One event more than the page tells whether another page follows.
        events = await c.store.get_history(self._run_id, self._last, page_size + 1)
        page = await resolve_events(c.data_converter.external_storage, events[:page_size])
        if page:
            self._last = page[-1].event_id
        self._current_page = page
        self._current_page_index = 0
        self._next_page_token = (
            orjson.dumps({"w": self._workflow_id, "r": self._run_id, "e": self._last})
            if len(events) > page_size
            else None
        )

    def __aiter__(self) -> WorkflowHistoryEventAsyncIterator:
        return self

    async def __anext__(self) -> HistoryEvent:
        while self._current_page is None or self._current_page_index >= len(self._current_page):
            if self._current_page is not None and self._next_page_token is None:
                if not self._wait:
                    raise StopAsyncIteration
                await self._wait_new_event()
            else:
                await self.fetch_next_page()
        event = self._current_page[self._current_page_index]
        self._current_page_index += 1
        return event

    async def _wait_new_event(self) -> None:
        """Fetch the next page once the run has a new event (polling for those recorded by
        other processes); the iteration ends after the run's closing event."""
        store = self._connection.store
        flag = store.notifier.listen(("changed",))
        try:
            while True:
                flag.clear()
                await self.fetch_next_page()
                if self._current_page:
                    return
                ex = await self._connection.execution(self._workflow_id, self._run_id)
                if not ex.is_open and self._last >= ex.next_event_id - 1:
                    raise StopAsyncIteration
                # Woken at once by a commit of this process; another's is seen by polling.
                await _REAL.wait(flag, _REAL.now() + FOLLOW_POLL_INTERVAL)
        finally:
            store.notifier.forget(("changed",))


def _read_token(token: bytes, workflow_id: str, run_id: str | None) -> tuple[str, int]:
    try:
        doc = orjson.loads(token)
        token_workflow, token_run, last = doc["w"], doc["r"], doc["e"]
        ok = isinstance(token_run, str) and isinstance(last, int) and not isinstance(last, bool)
    except (orjson.JSONDecodeError, TypeError, KeyError):
        ok = False
    if not ok:
        raise InvalidArgumentError(
            "Invalid next_page_token: it is not a history page token perdure made. Pass the "
            "token of the previous page of this run's history, or None to start at its first "
            "event."
        )
    if token_workflow != workflow_id or run_id not in (None, token_run):
        raise InvalidArgumentError(
            f"Invalid next_page_token: it continues the history of workflow "
            f"{token_workflow!r} run {token_run!r}, not of run {run_id or 'latest'!r} of "
            f"workflow {workflow_id!r}. Pass the token with a handle to the run it came from."
        )
    return token_run, last
