"""SQLite writes back only the columns of an executions row that changed since its
transaction read or wrote it (``_store/_sqlite_known``), and the row ends the same as when
every column was written."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from perdure._common.clock import VirtualClock
from perdure._store import open_store
from perdure._store._sqlite import SQLiteStore
from perdure._store._types import Execution, WftState, WorkflowExecutionStatus


def _execution(run_id: str) -> Execution:
    return Execution(
        run_id=run_id,
        namespace="default",
        workflow_id=f"wf-{run_id}",
        workflow_type="T",
        task_queue="q",
        status=WorkflowExecutionStatus.RUNNING,
        next_event_id=2,
        start_time=1_000_000.0,
        task_timeout=10.0,
    )


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = open_store(f"sqlite:///{tmp_path / 'known.db'}", VirtualClock(1_000_000.0))
    assert isinstance(s, SQLiteStore)
    try:
        yield s
    finally:
        await s.close()


async def _stored(store: SQLiteStore, run_id: str) -> Execution | None:
    async def read(tx: Any) -> Execution | None:
        result: Execution | None = await tx.get_execution(run_id)
        return result

    return await store.read(read)


async def test_an_update_sets_only_what_changed_and_the_row_matches(store: SQLiteStore) -> None:
    updates: list[str] = []
    store._conn.set_trace_callback(lambda s: updates.append(s) if "UPDATE" in s else None)

    async def op(tx: Any, fx: Any) -> Execution:
        await tx.insert_execution(_execution("r1"))
        ex: Execution = await tx.get_execution("r1")
        ex.next_event_id, ex.wft_state = 5, WftState.SCHEDULED
        await tx.update_execution(ex)
        await tx.update_execution(ex)  # nothing changed since: no statement
        ex.status, ex.close_time = WorkflowExecutionStatus.COMPLETED, 1_000_001.0
        ex.memo = {"note": "done"}
        await tx.update_execution(ex)
        return ex

    ex = await store.transact(op)
    store._conn.set_trace_callback(None)
    assert [u.split(" WHERE")[0] for u in updates] == [
        "UPDATE executions SET next_event_id = 5, wft_state = 1",
        "UPDATE executions SET status = 2, close_time = 1000001.0, memo = "
        + updates[1].split("memo = ")[1].split(" WHERE")[0],
    ]
    assert await _stored(store, "r1") == ex


async def test_another_object_of_the_run_writes_every_column(store: SQLiteStore) -> None:
    """Two objects of one run in one transaction: the last written wins whole, as when
    every update wrote every column."""

    async def op(tx: Any, fx: Any) -> None:
        await tx.insert_execution(_execution("r2"))
        a: Execution = await tx.get_execution("r2")
        b: Execution = await tx.get_execution("r2")
        b.status = WorkflowExecutionStatus.TERMINATED
        await tx.update_execution(b)
        a.next_event_id = 9
        await tx.update_execution(a)

    await store.transact(op)
    stored = await _stored(store, "r2")
    assert stored is not None
    assert (stored.status, stored.next_event_id) == (WorkflowExecutionStatus.RUNNING, 9)


async def test_what_a_failed_operation_wrote_is_forgotten(store: SQLiteStore) -> None:
    """An operation that fails after writing is undone (the batch runs again with a
    savepoint each): what it wrote is no longer taken as what the row holds."""

    async def create(tx: Any, fx: Any) -> None:
        await tx.insert_execution(_execution("r3"))

    await store.transact(create)
    held: list[Execution] = []

    async def failing(tx: Any, fx: Any) -> None:
        ex: Execution = await tx.get_execution("r3")
        ex.status = WorkflowExecutionStatus.FAILED
        await tx.update_execution(ex)
        held.append(ex)
        raise ValueError("after writing")

    async def then(tx: Any, fx: Any) -> None:
        ex = held[-1]  # the failed operation's object, its write undone
        ex.next_event_id = 7
        await tx.update_execution(ex)

    async def both() -> None:
        first = asyncio.ensure_future(store.transact(failing))
        second = asyncio.ensure_future(store.transact(then))
        with pytest.raises(Exception, match="after writing"):
            await first
        await second

    await both()
    stored = await _stored(store, "r3")
    assert stored is not None
    # Written whole, as before: the row holds the object's every value.
    assert (stored.status, stored.next_event_id) == (WorkflowExecutionStatus.FAILED, 7)
