"""A workflow task run inside the transaction that schedules it (a start's first, an
activity result's next) leaves no trace in the tasks table: no lease can outlive that
transaction, so its row is never written (``EagerWorkflowTask.unwritten``). One that is not
run there (its commands need more than the transaction can record) is written, leased,
and run after the commit as before."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from perdure import Client, Worker, activity, workflow
from perdure._store._sqlite import SQLiteStore
from perdure._store._types import TaskKind


@activity.defn
async def double(i: int) -> int:
    return 2 * i


@workflow.defn
class TwoSteps:
    @workflow.run
    async def run(self, i: int) -> int:
        for _ in range(2):
            i = await workflow.execute_activity(
                double, i, start_to_close_timeout=timedelta(seconds=30)
            )
        return i


@workflow.defn
class Child:
    @workflow.run
    async def run(self) -> str:
        return "child"


@workflow.defn
class Parent:
    @workflow.run
    async def run(self) -> str:
        # Starting a child is recorded after the commit (it may fail for the workflow's own
        # reason, an id taken): the first task is not run in the start's transaction.
        return await workflow.execute_child_workflow(Child.run, id="the-child")


async def _task_inserts(tmp_path: Path, run: type, *args: object) -> tuple[object, list[str]]:
    client = await Client.connect(f"sqlite:///{tmp_path / 'rows.db'}")
    store = client.store
    assert isinstance(store, SQLiteStore)
    inserts: list[str] = []
    try:
        async with Worker(
            client, task_queue="q", workflows=[TwoSteps, Parent, Child], activities=[double]
        ):
            store._conn.set_trace_callback(
                lambda s: inserts.append(s) if s.startswith("INSERT INTO tasks") else None
            )
            result = await client.execute_workflow(run.run, *args, id="w", task_queue="q")  # type: ignore[attr-defined]
            store._conn.set_trace_callback(None)
    finally:
        await client.close()
    return result, inserts


async def test_tasks_run_in_their_commit_write_no_row(tmp_path: Path) -> None:
    result, inserts = await _task_inserts(tmp_path, TwoSteps, 3)
    assert result == 12
    # The two activities' rows only: the start's first task and each result's next ran in
    # the transaction that scheduled them.
    assert _kinds(inserts) == [TaskKind.ACTIVITY, TaskKind.ACTIVITY], inserts


async def test_a_task_not_run_in_its_commit_is_written_and_run_after(tmp_path: Path) -> None:
    result, inserts = await _task_inserts(tmp_path, Parent)
    assert result == "child"
    # The parent's first task among them, leased and run after the commit.
    assert TaskKind.WORKFLOW in _kinds(inserts), inserts


def _kinds(inserts: list[str]) -> list[TaskKind]:
    return [TaskKind(int(s.split("VALUES (")[1].split(",")[0])) for s in inserts]
