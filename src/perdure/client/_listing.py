"""Listing workflows a page at a time: what :meth:`Client.list_workflows` returns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from perdure._store._types import Execution
from perdure.client._connection import Connection
from perdure.client._history import WorkflowHistory
from perdure.client._records import WorkflowExecution


class WorkflowExecutionAsyncIterator:
    """What :meth:`Client.list_workflows` returns: an async iterator of
    :class:`WorkflowExecution` that fetches a page at a time, or, through
    :meth:`map_histories`, of their histories.

    Most code just iterates. To show one page at a time (a web page of a listing, say),
    call :meth:`fetch_next_page` and read :attr:`current_page`; hand
    :attr:`next_page_token` to a later ``list_workflows(query, next_page_token=...)`` for
    the page after it. A token is the last row's place in the order, so the next page starts
    right after it even if workflows started in between, and it is refused with another
    query.

    Example::

        listing = client.list_workflows("ExecutionStatus = 'Running'", page_size=50)
        await listing.fetch_next_page()
        show(listing.current_page, more=listing.next_page_token)

        async for history in client.list_workflows("WorkflowType = 'Order'").map_histories():
            await Replayer(workflows=[Order]).replay_workflow(history)
    """

    def __init__(
        self,
        connection: Connection,
        query: str | None,
        page_size: int,
        next_page_token: bytes | None,
        limit: int | None,
    ) -> None:
        """Made by :meth:`Client.list_workflows`, not directly."""
        self._connection = connection
        self._query = query
        self._page_size = page_size
        self._next_page_token = next_page_token
        self._limit = limit
        self._current_page: Sequence[WorkflowExecution] | None = None
        self._current_page_index = 0
        self._yielded = 0

    @property
    def current_page_index(self) -> int:
        """Index in :attr:`current_page` of the execution the next ``__anext__`` returns."""
        return self._current_page_index

    @property
    def current_page(self) -> Sequence[WorkflowExecution] | None:
        """The page fetched last, or ``None`` before the first fetch."""
        return self._current_page

    @property
    def next_page_token(self) -> bytes | None:
        """The token of the page after the current one (``None`` once the last page has
        been fetched; before the first fetch, the token the listing was started with)."""
        return self._next_page_token

    async def fetch_next_page(self, *, page_size: int | None = None) -> None:
        """Fetch the next page into :attr:`current_page` (an empty page after the last).

        Args:
            page_size: this page's size, instead of the listing's.

        Raises:
            VisibilityQueryError: the query is malformed.
            InvalidArgumentError: the token belongs to another query.
        """
        rows = await self._fetch_rows(page_size)
        self._current_page = [await self._connection.execution_info(ex) for ex in rows]
        self._current_page_index = 0

    async def _fetch_rows(self, page_size: int | None) -> list[Execution]:
        page_size = page_size or self._page_size
        if self._limit is not None:
            page_size = max(1, min(page_size, self._limit - self._yielded))
        c = self._connection
        page = await c.store.list_workflows(
            c.namespace, self._query, page_size, self._next_page_token
        )
        self._next_page_token = page.next_page_token
        return page.executions

    def __aiter__(self) -> WorkflowExecutionAsyncIterator:
        return self

    async def __anext__(self) -> WorkflowExecution:
        if self._limit is not None and self._yielded >= self._limit:
            raise StopAsyncIteration
        while self._current_page is None or self._current_page_index >= len(self._current_page):
            if self._current_page is not None and self._next_page_token is None:
                raise StopAsyncIteration
            await self.fetch_next_page()
        execution = self._current_page[self._current_page_index]
        self._current_page_index += 1
        self._yielded += 1
        return execution

    async def map_histories(self) -> AsyncIterator[WorkflowHistory]:
        """The full history of each matching execution (each run, for continued runs)."""
        store = self._connection.store
        # The rows themselves: a memo the data converter cannot decode does not stop a replay.
        while self._limit is None or self._yielded < self._limit:
            for ex in await self._fetch_rows(None):
                if self._limit is not None and self._yielded >= self._limit:
                    return
                self._yielded += 1
                events = await store.get_history(ex.run_id)
                yield WorkflowHistory(workflow_id=ex.workflow_id, run_id=ex.run_id, events=events)
            if self._next_page_token is None:
                return
