"""What clients read of runs through the store: one run (``describe``, with what it waits on:
``describe_pending``), and lists and counts by visibility query. ``Store`` inherits them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TypeVar

from perdure._common.clock import Clock
from perdure._store import _activities as activities
from perdure._store import _children as children
from perdure._store import _executions as executions
from perdure._store import _visibility as visibility
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import Execution, PendingWork, TaskKind
from perdure._store._visibility_keys import ExecutionPage

T = TypeVar("T")


class ReadOps(ABC):
    """Describe a run; list and count runs."""

    dialect: str
    clock: Clock

    @abstractmethod
    async def transact(self, fn: Callable[[Tx, Effects], Awaitable[T]]) -> T: ...

    @abstractmethod
    async def read(self, fn: Callable[[Tx], Awaitable[T]]) -> T: ...

    async def describe(self, namespace: str, workflow_id: str, run_id: str | None) -> Execution:
        return await self.read(
            lambda tx: executions.find(tx, namespace, workflow_id, run_id, must_be_open=False)
        )

    async def describe_pending(
        self, namespace: str, workflow_id: str, run_id: str | None
    ) -> tuple[Execution, PendingWork]:
        """``describe`` and, for an open run, the activities and children it waits on, as
        they stand now: in one read."""

        async def op(tx: Tx) -> tuple[Execution, PendingWork]:
            ex = await executions.find(tx, namespace, workflow_id, run_id, must_be_open=False)
            if not ex.is_open:
                return ex, PendingWork(activities=[], children=[])
            rows = await tx.run_tasks(ex.run_id, TaskKind.ACTIVITY)
            kids = await tx.open_children(ex.run_id) if ex.children_started else []
            now = self.clock.now()
            return ex, PendingWork(
                activities=[activities.pending(row, now) for row in rows],
                children=[children.pending(child) for child in kids],
            )

        return await self.read(op)

    async def list_workflows(
        self,
        namespace: str,
        query: str | None,
        page_size: int,
        next_page_token: bytes | None = None,
    ) -> ExecutionPage:
        """Executions matching a visibility query, a page at a time: the first page, or the
        one after ``next_page_token`` (from the previous page of the same query).

        Raises:
            VisibilityQueryError: the query is malformed (the message points at the token).
            InvalidArgumentError: the token belongs to another query, or ``page_size`` < 1.
        """
        return await self.read(
            lambda tx: visibility.list_executions(
                tx, namespace, query, self.dialect, page_size, next_page_token
            )
        )

    async def count_workflows(self, namespace: str, query: str | None) -> int:
        count, _ = await self.count_workflow_groups(namespace, query)
        return count

    async def count_workflow_groups(
        self, namespace: str, query: str | None, max_count: int | None = None
    ) -> tuple[int, list[tuple[int, int]]]:
        """The count, and for ``GROUP BY ExecutionStatus`` the (status, count) pairs; with
        ``max_count``, each count stops there."""
        return await self.read(
            lambda tx: visibility.count_executions(tx, namespace, query, self.dialect, max_count)
        )
