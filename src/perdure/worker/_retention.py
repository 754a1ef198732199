"""The retention sweep: what workers do to keep the database from only growing.

Any running worker (and the time-skipping test environment, as its clock moves) deletes
the closed runs each namespace's retention lets go, a small batch per transaction, after
archiving each history if the namespace asks for it; then deletes from the external storage
the offloaded payloads that no run refers to any more, and gives SQLite's freed pages back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from perdure._store import Store
from perdure._store._retention import SWEEP_BATCH
from perdure._store._types import Execution, NamespaceRow
from perdure.client._handle import WorkflowHistory
from perdure.client._namespace import Archiver, archiver_from_uri
from perdure.converter import ExternalStorage
from perdure.converter._external import resolve_events

log = logging.getLogger("perdure.worker")

# Offloaded payloads looked at by one round of garbage collection.
GARBAGE_BATCH = 200
# While it works through a backlog the sweep keeps to this share of the time (it takes the
# same write lock and event loop as the workers), pausing at least SWEEP_PAUSE (seconds)
# between rounds.
SWEEP_SHARE = 0.05
SWEEP_PAUSE = 0.02


@dataclass
class SweepStats:
    """What sweeps did, for the benchmark: runs deleted and each deleting transaction's
    duration (seconds), blobs deleted."""

    deleted: int = 0
    blobs_deleted: int = 0
    batch_seconds: list[float] = field(default_factory=list)
    reclaim_seconds: list[float] = field(default_factory=list)


class RetentionSweeper:
    """Sweeps one store: its archivers (by URI) and external storages are those of the
    workers of this process that use the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.archivers: dict[str, Archiver] = {}
        self.storages: list[ExternalStorage] = []
        self.stats = SweepStats()
        self._warned: set[str] = set()

    def use(self, storage: ExternalStorage | None, archiver: Archiver | None) -> None:
        if storage is not None and all(s.uri != storage.uri for s in self.storages):
            self.storages.append(storage)
        if archiver is not None:
            self.archivers.setdefault(archiver.uri, archiver)

    async def sweep(self) -> int:
        """One round: at most a batch of runs per namespace; returns the runs deleted (a full
        batch means more may be waiting)."""
        deleted = 0
        for ns in await self.store.retained_namespaces():
            deleted += await self._sweep_namespace(ns)
        for storage in self.storages:
            self.stats.blobs_deleted += await collect_garbage(self.store, storage)
        if deleted:
            began = time.perf_counter()
            await self.store.reclaim_space()
            self.stats.reclaim_seconds.append(time.perf_counter() - began)
        return deleted

    async def sweep_paced(self) -> int:
        """One round, then a pause long enough that rounds take at most ``SWEEP_SHARE`` of
        the time: the workers' transactions go between them. Returns the runs deleted."""
        began = time.perf_counter()
        deleted = await self.sweep()
        if deleted:
            spent = time.perf_counter() - began
            await asyncio.sleep(max(SWEEP_PAUSE, spent * (1 - SWEEP_SHARE) / SWEEP_SHARE))
        return deleted

    async def sweep_all(self) -> int:
        """Rounds until nothing is left to delete now."""
        total = 0
        while (n := await self.sweep()) > 0:
            total += n
        return total

    async def _sweep_namespace(self, ns: NamespaceRow) -> int:
        among: list[str] = []
        if ns.archive_uri is not None:
            archiver = self._archiver(ns.archive_uri)
            if archiver is None:
                return 0
            runs = await self.store.expired_runs(ns, SWEEP_BATCH)
            if not runs:
                return 0
            for ex in runs:
                await archiver.archive(ns.name, await self._history(ex))
            among = [ex.run_id for ex in runs]
        began = time.perf_counter()
        run_ids = await self.store.delete_expired(ns, SWEEP_BATCH, among)
        if run_ids:
            self.stats.batch_seconds.append(time.perf_counter() - began)
            self.stats.deleted += len(run_ids)
        return len(run_ids)

    def _archiver(self, uri: str) -> Archiver | None:
        archiver = self.archivers.get(uri)
        if archiver is None:
            try:
                archiver = self.archivers[uri] = archiver_from_uri(uri)
            except Exception as exc:
                if uri not in self._warned:
                    self._warned.add(uri)
                    log.warning("Retention is paused: cannot archive histories (%s)", exc)
                return None
        return archiver

    async def _history(self, ex: Execution) -> WorkflowHistory:
        events = await self.store.get_history(ex.run_id)
        storage = self.storages[0] if self.storages else None
        events = await resolve_events(storage, events)
        return WorkflowHistory(workflow_id=ex.workflow_id, run_id=ex.run_id, events=events)


async def collect_garbage(store: Store, storage: ExternalStorage) -> int:
    """Delete from ``storage`` the blobs no run refers to any more (those last written
    within its ``delete_grace`` wait for a later round); returns how many were deleted."""
    keys = await store.take_payload_garbage(GARBAGE_BATCH)
    if not keys:
        return 0
    deleted = 0
    done: list[str] = []
    grace = storage.delete_grace.total_seconds()
    for key in keys:
        written = await storage.written_at(key)
        if written is not None and time.time() - written < grace:
            continue  # written again just now: a reference to it may be about to commit
        if written is not None:
            await storage.delete(key)
            deleted += 1
        done.append(key)
    if done:
        await store.forget_payload_garbage(done)
    return deleted
