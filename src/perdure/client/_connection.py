"""What a client's handles, iterators and interceptor chain share: the store, the namespace,
the data converter, the identity and the time-skipping clock, with the few operations they
all build on (waiting for a run to close, running a query, the memo and failure codecs).

A ``Client`` owns one ``Connection`` and builds its handles from it; nothing here knows the
``Client``, so the modules below it (handles, iterators, the chain's end) import this and not
the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from perdure._common.clock import Clock
from perdure._common.payload import Payload
from perdure._store import Store
from perdure._store._types import (
    Execution,
    QueryResult,
    WftState,
)
from perdure._store._visibility_query import STATUS_NAMES
from perdure.client._records import (
    WorkflowExecution,
    WorkflowExecutionCount,
    WorkflowExecutionCountAggregationGroup,
)
from perdure.common._search_attributes import decode_pairs
from perdure.converter import DataConverter
from perdure.converter._limits import check_payloads
from perdure.converter._visitor import decode_within

log = logging.getLogger("perdure.client")

# Queries are answered by workers on real time, whatever clock the store runs on.
_REAL = Clock()

# How often a waiter re-reads the database for changes made by other processes.
POLL_INTERVAL = 0.1


class TimeSkipper(Protocol):
    """Moves a virtual clock while a client waits (set by the testing environment)."""

    def auto_skip(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    def awaiting(self, run_id: str) -> contextlib.AbstractContextManager[None]:
        """While a client waits for this run to close: once it has, the clock holds still
        until the waiter has seen it (or time would run on past the awaited result)."""


class Connection:
    """A client's store and settings, and what its handles do with them."""

    def __init__(
        self,
        store: Store,
        *,
        namespace: str,
        data_converter: DataConverter,
        identity: str,
        time_skipper: TimeSkipper | None = None,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.data_converter = data_converter
        self.identity = identity
        # Set by the time-skipping test environment: waits on this client move its clock.
        self.time_skipper = time_skipper

    async def execution(self, workflow_id: str, run_id: str | None) -> Execution:
        """The run (the latest of the id if ``run_id`` is None).

        Raises:
            WorkflowNotFoundError: no such workflow run.
        """
        return await self.store.describe(self.namespace, workflow_id, run_id)

    async def wait_closed(self, workflow_id: str, run_id: str | None) -> Execution:
        """The run once closed (the id's latest if ``run_id`` is None). It is watched before
        each read, so one read tells whether it is closed already; one more when it closes
        while waited for, unless this process closed it (its commit hands the run over).
        While it waits, only its id is held: thousands of results awaited at once are that
        many waits for every garbage collection to walk."""
        store, skipper = self.store, self.time_skipper
        if run_id is None:
            ex = await store.describe(self.namespace, workflow_id, None)
            if not ex.is_open:
                return ex
            run_id = ex.run_id
            del ex
        while True:
            closed = store.watch_closed(run_id)
            try:
                if skipper is None:
                    found = await self._closed_or_waited(workflow_id, run_id, closed)
                else:
                    with skipper.awaiting(run_id):  # the clock stands still until seen closed
                        found = await self._closed_or_waited(workflow_id, run_id, closed)
            finally:
                store.unwatch_closed(run_id, closed)
            if found is not None:
                return found

    async def _closed_or_waited(
        self, workflow_id: str, run_id: str, closed: asyncio.Future[Execution | None]
    ) -> Execution | None:
        """The run if it is closed; else, once ``closed`` is done, the run it brings (closed
        by this process), or None (closed by another: read it again)."""
        ex = await self.store.describe(self.namespace, workflow_id, run_id)
        if not ex.is_open:
            return ex
        del ex
        return await closed

    async def settled(self, workflow_id: str, run_id: str | None, timeout: float) -> Execution:
        """The run once its pending workflow task (if any) is done, so that a query sees the
        signals and updates sent before it (Temporal's rule). A task that keeps failing is
        not waited for: the query reads the last good state."""
        store = self.store
        ex = await store.describe(self.namespace, workflow_id, run_id)
        if not _task_pending(ex):
            return ex
        flag = store.notifier.listen(("changed",))
        deadline = time.monotonic() + timeout
        try:
            while _task_pending(ex) and time.monotonic() < deadline:
                flag.clear()
                await _REAL.wait(flag, _REAL.now() + POLL_INTERVAL)
                ex = await store.describe(self.namespace, workflow_id, ex.run_id)
        finally:
            store.notifier.forget(("changed",))
        return ex

    async def run_query(
        self,
        ex: Execution,
        name: str,
        payloads: list[Payload],
        timeout: float,
        header: dict[str, Payload] | None = None,
    ) -> QueryResult | None:
        store = self.store
        query_id = await store.insert_query(ex, name, payloads, header)
        key = ("query", query_id)
        event = store.notifier.listen(key)
        loop_deadline = time.monotonic() + timeout
        # No time skipping while it waits (Temporal's rule: only a wait for a result skips):
        # a timer that fired first would make the answer a race.
        try:
            while True:
                event.clear()
                answer = await store.get_query_result(query_id)
                if answer is not None:
                    return answer
                if time.monotonic() >= loop_deadline:
                    return None
                await _REAL.wait(event, _REAL.now() + min(POLL_INTERVAL, timeout))
        finally:
            store.notifier.forget(key)
            await store.delete_query(query_id)

    async def count_workflows(
        self, query: str | None, max_count: int | None = None
    ) -> WorkflowExecutionCount:
        count, groups = await self.store.count_workflow_groups(self.namespace, query, max_count)
        return WorkflowExecutionCount(
            count,
            [WorkflowExecutionCountAggregationGroup(n, [STATUS_NAMES[s]]) for s, n in groups],
        )

    async def execution_info(self, ex: Execution) -> WorkflowExecution:
        return WorkflowExecution(
            id=ex.workflow_id,
            run_id=ex.run_id,
            workflow_type=ex.workflow_type,
            task_queue=ex.task_queue,
            namespace=ex.namespace,
            status=ex.status,
            start_time=datetime.fromtimestamp(ex.start_time, UTC),
            close_time=(
                datetime.fromtimestamp(ex.close_time, UTC) if ex.close_time is not None else None
            ),
            history_length=ex.next_event_id - 1,
            memo=await self.decode_memo(ex.memo),
            typed_search_attributes=decode_pairs(ex.search_attributes),
            parent_id=ex.parent["workflow_id"] if ex.parent else None,
            parent_run_id=ex.parent["run_id"] if ex.parent else None,
        )

    async def encode_memo(self, memo: dict[str, Any] | None) -> dict[str, Any] | None:
        if memo is None:
            return None
        keys = list(memo)
        payloads = await self.data_converter.encode([memo[k] for k in keys])
        check_payloads(payloads, "the memo", logger=log)
        return dict(zip(keys, payloads, strict=True))

    async def decode_memo(self, memo: dict[str, Any] | None) -> dict[str, Any]:
        if not memo:
            return {}
        keys = list(memo)
        values = await self.data_converter.decode([memo[k] for k in keys])
        return dict(zip(keys, values, strict=True))

    async def decode_failure(self, failure: dict[str, Any]) -> dict[str, Any]:
        return await decode_within(self.data_converter._store_codec, failure)


def _task_pending(ex: Execution) -> bool:
    """A workflow task is to be recorded, with events the code has not seen. One retried
    because the code failed is not waited for (the code may be stuck on a bug, and a query
    such as ``__stack_trace`` is how to see where); one run again because its worker was
    lost or could not record it is."""
    return ex.is_open and ex.wft_state != WftState.NONE and not ex.code_failing
