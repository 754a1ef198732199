"""The store's operations for the data lifecycle (see ``_retention``): a namespace's
settings, the retention sweep's reads and deletions, and the garbage of offloaded payloads.
Mixed into ``Store``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from perdure._common.metrics import StoreGauges
from perdure._store import _gauges as gauges
from perdure._store import _retention as retention
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import Execution, NamespaceRow

if TYPE_CHECKING:
    from perdure._common.clock import Clock

T = TypeVar("T")


class LifecycleOps:
    if TYPE_CHECKING:
        clock: Clock

        async def transact(self, fn: Callable[[Tx, Effects], Awaitable[T]]) -> T: ...

        async def read(self, fn: Callable[[Tx], Awaitable[T]]) -> T: ...

    async def gauges(self) -> StoreGauges:
        """What is waiting in the store right now (the metrics' store gauges)."""
        return await self.read(lambda tx: gauges.read(tx, self.clock.now()))

    async def get_namespace(self, name: str) -> NamespaceRow:
        """A namespace's settings (the defaults, if never updated)."""
        return await self.read(lambda tx: retention.namespace(tx, name))

    async def update_namespace(self, row: NamespaceRow) -> NamespaceRow:
        async def op(tx: Tx, fx: Effects) -> NamespaceRow:
            fx.changed = True
            return await retention.update_namespace(tx, row)

        return await self.transact(op)

    async def retained_namespaces(self) -> list[NamespaceRow]:
        """The namespaces with a retention period."""
        return await self.read(lambda tx: tx.retained_namespaces())

    async def expired_runs(self, ns: NamespaceRow, limit: int) -> list[Execution]:
        """Up to ``limit`` closed runs of ``ns`` that retention lets go now (a read: what an
        archiver archives before :meth:`delete_expired`)."""
        return await self.read(lambda tx: retention.expired(tx, ns, self.clock.now(), limit))

    async def delete_expired(
        self, ns: NamespaceRow, limit: int, among: Sequence[str] = ()
    ) -> list[str]:
        """Delete, in one transaction, up to ``limit`` runs of ``ns`` (of ``among`` if given)
        that retention lets go now; their ids."""
        return await self.transact(
            lambda tx, fx: retention.delete_expired(tx, ns, self.clock.now(), limit, among, fx)
        )

    async def take_payload_garbage(self, limit: int) -> list[str]:
        """Keys of offloaded payloads no run refers to (still listed until forgotten)."""
        return await self.transact(lambda tx, fx: retention.take_payload_garbage(tx, limit))

    async def forget_payload_garbage(self, keys: Sequence[str]) -> None:
        """The storage deleted these: stop listing them."""
        await self.transact(lambda tx, fx: tx.forget_payload_garbage(keys))

    async def reclaim_space(self) -> None:
        """Give the space of deleted rows back to the file system, a little at a time (a
        no-op but on SQLite, whose file otherwise keeps its size)."""
