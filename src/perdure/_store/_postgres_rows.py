"""What a PostgreSQL write transaction already knows, so that it need not ask the server
again: the executions and tasks rows its operation has locked or written, and task ids
taken from the tasks' sequence ahead of their inserts."""

from __future__ import annotations

from typing import Any

from perdure._store._rows import execution_row, execution_values, task_insert_values, task_row
from perdure._store._types import Execution, TaskRow

# Task ids taken from the sequence at once (nextval is not transactional: ids taken by a
# transaction that rolls back are skipped, as the database's own would be).
ID_BLOCK = 128
_GONE = None  # a row this operation deleted


class TaskIds:
    """Task ids this process has taken from the tasks' sequence, not used yet: a task is
    inserted with its id known, so that its insert can wait and be sent with others (no
    ``RETURNING`` to wait for), and a task inserted and deleted by one operation (a
    workflow task run in the commit that made it) is never written."""

    def __init__(self) -> None:
        self._free: list[int] = []

    async def take(self, conn: Any) -> int:
        if not self._free:
            rows = await conn.fetch(
                "SELECT nextval('tasks_task_id_seq') FROM generate_series(1, $1)", ID_BLOCK
            )
            self._free = sorted((int(r[0]) for r in rows), reverse=True)
        return self._free.pop()


class LockedRows:
    """The executions and tasks rows one operation of a write transaction has read with
    ``FOR UPDATE`` or written itself, as they now stand in the transaction.

    No other transaction can change a row locked (or created, and so not yet visible) by
    this one until it ends, and this one changes them only through the ``Tx`` primitives,
    which note what they write here; so a second read of such a row is answered from here,
    without a round trip (and without first sending the writes held back). Rows are kept
    as the tuples the database returns, decoded anew for each read, so that what the rules
    do to the objects they get never changes what is kept. Forgotten when the operation
    ends: a failed operation's writes are undone.
    """

    def __init__(self) -> None:
        self.executions: dict[str, tuple[Any, ...]] = {}
        self.tasks: dict[int, tuple[Any, ...] | None] = {}

    def clear(self) -> None:
        self.executions.clear()
        self.tasks.clear()

    def execution(self, run_id: str) -> Execution | None:
        row = self.executions.get(run_id)
        return execution_row(row) if row is not None else None

    def put_execution_row(self, row: Any) -> None:
        self.executions[row[0]] = tuple(row)

    def put_execution(self, ex: Execution) -> None:
        self.executions[ex.run_id] = execution_values(ex)

    def has_task(self, task_id: int) -> bool:
        return task_id in self.tasks

    def task(self, task_id: int) -> TaskRow | None:
        """The task (None if this operation deleted it); ``has_task`` first."""
        row = self.tasks[task_id]
        return task_row(row) if row is not _GONE else None

    def find_task(self, run_id: str, kind: int, ref: int) -> TaskRow | None:
        """A task of this (run, kind, ref) that this operation holds, if it knows of one."""
        for row in self.tasks.values():
            if row is not _GONE and row[4] == run_id and row[1] == kind and row[6] == ref:
                return task_row(row)
        return None

    def put_task_row(self, row: Any) -> None:
        self.tasks[row[0]] = tuple(row)

    def put_task(self, task: TaskRow) -> None:
        self.tasks[task.task_id] = (task.task_id, *task_insert_values(task))

    def task_deleted(self, task_id: int) -> None:
        self.tasks[task_id] = _GONE

    def forget_tasks(self, run_id: str | None = None) -> None:
        """Forget the tasks of ``run_id`` (None: every task): a statement changed them."""
        if run_id is None:
            self.tasks.clear()
            return
        for task_id, row in list(self.tasks.items()):
            if row is _GONE or row[4] == run_id:
                del self.tasks[task_id]
