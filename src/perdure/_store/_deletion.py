"""The rules for deleting runs (Temporal's DeleteWorkflowExecution): a run and every row it
owns go in one transaction; an open run is terminated first, so that whatever depends on its
closing (its children's parent close policy, its parent, result waiters) hears of it."""

from __future__ import annotations

from collections.abc import Sequence

from perdure._store import _executions as executions
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import Execution


async def delete_runs(
    tx: Tx, runs: Sequence[Execution], reason: str, identity: str, now: float, fx: Effects
) -> None:
    """Delete runs with their history, tasks, timers, inbox, visibility, update and query
    rows, terminating (with ``reason``) those still open. Runs of one transaction: a
    retention sweep passes a small batch of closed runs at a time."""
    for ex in runs:
        if ex.is_open:
            await executions.terminate(tx, ex, reason, identity, now, fx)
            fx.closed[ex.run_id] = None  # gone with it: its waiters read, and find nothing
    await tx.delete_runs([ex.run_id for ex in runs])
    fx.changed = True


async def delete_workflow(
    tx: Tx,
    namespace: str,
    workflow_id: str,
    run_id: str | None,
    identity: str,
    now: float,
    fx: Effects,
) -> str:
    """Delete one run (the open or latest one without ``run_id``); returns its id.

    Raises:
        WorkflowNotFoundError: no such run.
    """
    ex = await executions.find(tx, namespace, workflow_id, run_id, must_be_open=False)
    await delete_runs(tx, [ex], "Workflow execution deleted", identity, now, fx)
    return ex.run_id
