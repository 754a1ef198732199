"""A database made before flow control (schema version 7) migrates: its queued tasks keep
their order (priority 3, no fairness pass) and are claimed as before, next to new ones."""

from __future__ import annotations

from pathlib import Path

from oldschema import make_old_database
from pgutil import fresh_schema
from storerows import start_request

from perdure._common.clock import VirtualClock
from perdure._store import open_store
from perdure._store._migrate import migrate
from perdure._store._schema import LATEST_VERSION
from perdure._store._types import StartWorkflowRequest
from perdure.common import Priority
from perdure.common._priority import priority_dict

BEFORE = 7  # the schema version before flow control's migration


def request(workflow_id: str, priority: Priority | None = None) -> StartWorkflowRequest:
    return start_request(workflow_id, priority=priority_dict(priority))


async def _make_old(url: str) -> None:
    """A version-7 database holding one run and its queued workflow task, as perdure of that
    version wrote them."""
    await make_old_database(
        url,
        BEFORE,
        [
            (
                "INSERT INTO executions (run_id, namespace, workflow_id, workflow_type, "
                "task_queue, status, next_event_id, start_time, task_timeout, wft_state, "
                "first_run_id) VALUES "
                "('run-old', 'default', 'old', 'W', 'q', 1, 2, 999999, 10, 1, 'run-old')",
                (),
            ),
            (
                "INSERT INTO history (run_id, event_id, event_type, event_time, attributes) "
                "VALUES ('run-old', 1, 'WorkflowExecutionStarted', 999999, ?)",
                (b'{"input": []}',),
            ),
            (
                "INSERT INTO tasks (kind, namespace, task_queue, run_id, workflow_id, ref, "
                "visible_at, lease_seconds, data) VALUES "
                "(1, 'default', 'q', 'run-old', 'old', 0, 999999, 10, ?)",
                (b"{}",),
            ),
        ],
    )


async def test_an_old_database_migrates_and_keeps_its_queue(db_url: str) -> None:
    assert LATEST_VERSION > BEFORE  # flow control came with version 8; later ones follow
    await _make_old(db_url)
    store = open_store(db_url, VirtualClock(1_000_000.0))
    try:
        await store.start_workflow(request("urgent", Priority(priority_key=1)))
        await store.start_workflow(request("fair", Priority(fairness_key="t")))
        await store.start_workflow(request("plain"))
        order = []
        while tasks := await store.claim_workflow_tasks("default", "q", "w", 1):
            order.extend(t.workflow_id for t in tasks)
        assert order == ["urgent", "old", "plain", "fair"]
    finally:
        await store.close()


async def test_perdure_migrate_copies_priorities_and_fairness(tmp_path: Path) -> None:
    """Queued tasks keep their priority, fairness pass and concurrency key when the database
    moves from SQLite to PostgreSQL, and new tasks take turns with them from where they were."""
    src = open_store(f"sqlite:///{tmp_path / 'src.db'}", VirtualClock(1_000_000.0))
    try:
        for i in range(6):
            await src.start_workflow(request(f"a-{i}", Priority(fairness_key="a")))
        await src.start_workflow(request("urgent", Priority(priority_key=1)))
    finally:
        await src.close()
    async with fresh_schema() as url:
        src = open_store(f"sqlite:///{tmp_path / 'src.db'}", VirtualClock(1_000_000.0))
        dst = open_store(url, VirtualClock(1_000_000.0))
        try:
            reports = {r.table: r.rows for r in await migrate(src, dst)}
            assert (reports["tasks"], reports["fairness"]) == (7, 1)
            for i in range(3):
                await dst.start_workflow(request(f"b-{i}", Priority(fairness_key="b")))
            order = []
            while tasks := await dst.claim_workflow_tasks("default", "q", "w", 1):
                order.extend(t.workflow_id for t in tasks)
        finally:
            await src.close()
            await dst.close()
    assert order == ["urgent", "a-0", "a-1", "b-0", "a-2", "b-1", "a-3", "b-2", "a-4", "a-5"]
