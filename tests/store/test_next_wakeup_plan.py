"""The timer service's next wake-up is one index seek per kind of deadline on SQLite: the
earliest waiting task comes from ``tasks_waiting``, not from reading every ready task."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from perdure._common.clock import VirtualClock
from perdure._store import open_store
from perdure._store._sqlite import NEXT_WAKEUP_SQL
from perdure._store._types import StartWorkflowRequest


async def test_the_next_wakeup_seeks_the_waiting_tasks_index(tmp_path: Path) -> None:
    path = tmp_path / "wakeup.db"
    store = open_store(f"sqlite:///{path}", VirtualClock(1_000_000.0))
    try:
        for i in range(200):  # 200 ready workflow tasks
            await store.start_workflow(
                StartWorkflowRequest(
                    namespace="default",
                    workflow_id=f"wf-{i}",
                    workflow_type="W",
                    task_queue="q",
                    input=[],
                    run_id=f"run-{i}",
                )
            )
        assert await store.next_wakeup() is None  # all visible now: nothing to wake up for
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        plan = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + NEXT_WAKEUP_SQL, (0.0,))]
    finally:
        conn.close()
    assert any("USING INDEX tasks_waiting (visible_at>?)" in p for p in plan), plan
    assert not any("tasks_ready" in p for p in plan), plan
