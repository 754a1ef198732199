"""The rules of the data lifecycle: a namespace's retention period, the closed runs it lets
go, and the offloaded payloads nobody refers to any more.

A closed run may be deleted ``retention`` after it closed, unless something still needs it:

- a child whose parent run is still open (the parent's ``describe()`` lists its children,
  and the UI links to them);
- a run of a chain (continued as new, retried) whose latest run is still open:
  ``result()`` on a handle of an early run follows the chain to the open one.

Each run is then deleted on its own (as Temporal does), in small batches, each one
transaction. Runs are never deleted while open: retention applies to closed runs only.
"""

from __future__ import annotations

from collections.abc import Sequence

from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import Execution, NamespaceRow

# Runs deleted by one transaction of a sweep: small enough that the write lock it holds
# stays short (benchmarks/bench_retention.py measures it).
SWEEP_BATCH = 50


async def namespace(tx: Tx, name: str) -> NamespaceRow:
    """The namespace's settings (the defaults if it was never updated)."""
    return await tx.get_namespace(name) or NamespaceRow(name)


async def update_namespace(tx: Tx, row: NamespaceRow) -> NamespaceRow:
    """Store a namespace's settings.

    Raises:
        ValueError: a retention period that is not positive.
    """
    if row.retention is not None and row.retention <= 0:
        raise ValueError(
            f"A retention period must be positive (got {row.retention} seconds); "
            "None keeps closed workflows forever"
        )
    await tx.put_namespace(row)
    return row


async def expired(tx: Tx, ns: NamespaceRow, now: float, limit: int) -> list[Execution]:
    """Up to ``limit`` runs of ``ns`` that retention lets go now, oldest first."""
    if ns.retention is None:
        return []
    run_ids = await tx.expired_runs(ns.name, now - ns.retention, limit)
    runs = await tx.get_executions(run_ids)
    return [runs[r] for r in run_ids if r in runs]


async def delete_expired(
    tx: Tx, ns: NamespaceRow, now: float, limit: int, among: Sequence[str], fx: Effects
) -> list[str]:
    """Delete up to ``limit`` runs of ``ns`` (of ``among``, if given) that retention lets go
    now, with all they own; returns their ids. The runs are chosen (and, on PostgreSQL,
    locked) here, in the deleting transaction, so a run that became needed since it was
    read (a new run of its chain started) stays."""
    if ns.retention is None:
        return []
    run_ids = await tx.expired_runs(ns.name, now - ns.retention, limit, among)
    if run_ids:
        await tx.delete_runs(run_ids)
        fx.changed = True
    return run_ids


async def take_payload_garbage(tx: Tx, limit: int) -> list[str]:
    """Keys of offloaded payloads that no run refers to, for the storage to delete. A key
    some run refers to again (the same bytes were offloaded again since) is forgotten here."""
    keys = await tx.payload_garbage(limit)
    again = await tx.payload_keys_referenced(keys)
    if again:
        await tx.forget_payload_garbage(sorted(again))
    return [k for k in keys if k not in again]
