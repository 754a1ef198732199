"""The store's operations on messages to a running workflow that a worker answers: updates
(requested, possibly with a start, then read back as they settle) and queries (inserted,
claimed by a worker, answered, deleted). ``Store`` inherits them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, runtime_checkable

from perdure._common.clock import Clock
from perdure._common.payload import Payload
from perdure._store import _queries as queries
from perdure._store import _starts as starts
from perdure._store import _updates as updates
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import (
    Execution,
    QueryResult,
    QueryTask,
    StartResult,
    StartWorkflowRequest,
    UpdateRow,
    UpdateState,
)

T = TypeVar("T")


def claim_count(limit: int | Callable[[], int]) -> int:
    """A claim's limit: a number, or a function deciding it inside the transaction."""
    return limit() if callable(limit) else limit


@runtime_checkable
class ClaimBudget(Protocol):
    """A claim's limit decided inside its transaction (the worker's free slots, reserved
    there), told inside the same transaction how many the claim took, so that the slots it
    did not take are free again for the rest of the commit batch."""

    def __call__(self) -> int: ...

    def took(self, n: int) -> None: ...


def claim_took(limit: int | Callable[[], int], n: int) -> None:
    """Inside a claim's transaction, after the claim: tell its budget how many it took."""
    if isinstance(limit, ClaimBudget):
        limit.took(n)


class MessageOps(ABC):
    """Request and read updates; insert, claim, answer and delete queries."""

    clock: Clock

    @abstractmethod
    async def transact(self, fn: Callable[[Tx, Effects], Awaitable[T]]) -> T: ...

    @abstractmethod
    async def read(self, fn: Callable[[Tx], Awaitable[T]]) -> T: ...

    # -- updates -------------------------------------------------------------------------------
    async def request_update(
        self,
        namespace: str,
        workflow_id: str,
        run_id: str | None,
        update_id: str,
        name: str,
        payloads: list[Payload],
        start: StartWorkflowRequest | None = None,
        header: dict[str, Payload] | None = None,
    ) -> tuple[UpdateRow, StartResult | None]:
        """Request an update (deduplicated by id), starting the workflow first in the same
        transaction when ``start`` is given (update-with-start)."""

        async def op(tx: Tx, fx: Effects) -> tuple[UpdateRow, StartResult | None]:
            now = self.clock.now()
            started = None
            target_run = run_id
            if start is not None:
                started = await starts.start_workflow(tx, start, now, fx)
                target_run = started.run_id
            row = await updates.request(
                tx, namespace, workflow_id, target_run, update_id, name, payloads, now, fx, header
            )
            return row, started

        return await self.transact(op)

    async def get_update(self, run_id: str, update_id: str) -> UpdateRow | None:
        return await self.read(lambda tx: tx.get_update(run_id, update_id))

    async def requested_updates(self, run_id: str) -> list[UpdateRow]:
        return await self.read(lambda tx: tx.updates_in_state(run_id, (UpdateState.REQUESTED,)))

    async def insert_query(
        self,
        ex: Execution,
        query_type: str,
        args: list[Payload],
        header: dict[str, Payload] | None = None,
    ) -> int:
        return await self.transact(
            lambda tx, fx: queries.insert(tx, ex, query_type, args, self.clock.now(), fx, header)
        )

    async def claim_queries(
        self, namespace: str, task_queue: str, owner: str, limit: int | Callable[[], int]
    ) -> list[QueryTask]:
        return await self.transact(
            lambda tx, fx: queries.claim(
                tx, namespace, task_queue, owner, self.clock.now(), claim_count(limit), fx
            )
        )

    async def delete_query(self, query_id: int) -> None:
        await self.transact(lambda tx, fx: tx.delete_query(query_id))

    async def answer_query(self, query_id: int, result: QueryResult) -> None:
        async def op(tx: Tx, fx: Effects) -> None:
            await tx.put_query_result(query_id, result)
            fx.queries.add(query_id)

        await self.transact(op)
