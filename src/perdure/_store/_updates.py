"""The rules for updates: requested outside history (a rejected update leaves no event),
accepted and completed as events, deduplicated by update id."""

from __future__ import annotations

from typing import Any

from perdure._common.payload import Payload
from perdure._errors import WorkflowNotFoundError
from perdure._store import _executions as executions
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import Execution, UpdateRow, UpdateState


async def request(
    tx: Tx,
    namespace: str,
    workflow_id: str,
    run_id: str | None,
    update_id: str,
    name: str,
    payloads: list[Payload],
    now: float,
    fx: Effects,
    header: dict[str, Payload] | None = None,
) -> UpdateRow:
    """Ask the workflow to run an update; returns its row (an existing one for a repeated
    update id, whatever its state, so retried calls never apply an update twice)."""
    ex = await executions.find(tx, namespace, workflow_id, run_id, must_be_open=False)
    existing = await tx.get_update(ex.run_id, update_id)
    if existing is not None:
        return existing
    if not ex.is_open:
        raise WorkflowNotFoundError(
            f"Workflow execution {workflow_id!r} (run {ex.run_id}) is already closed "
            f"({ex.status.name}): it cannot take update {name!r}"
        )
    row = UpdateRow(ex.run_id, update_id, name, payloads, UpdateState.REQUESTED, None, header)
    await tx.insert_update(row, now)
    ex.updates_requested = True
    await executions.schedule_workflow_task(tx, ex, now, fx)
    await tx.update_execution(ex)
    return row


def _settled(fx: Effects, run_id: str, update_id: str) -> None:
    fx.notify("update", run_id, update_id)


async def accepted(tx: Tx, ex: Execution, update_id: str, fx: Effects) -> None:
    await tx.set_update_state(ex.run_id, update_id, UpdateState.ACCEPTED, None)
    _settled(fx, ex.run_id, update_id)


async def rejected(
    tx: Tx, ex: Execution, update_id: str, failure: dict[str, Any], fx: Effects
) -> None:
    await tx.set_update_state(ex.run_id, update_id, UpdateState.REJECTED, {"failure": failure})
    _settled(fx, ex.run_id, update_id)


async def completed(
    tx: Tx, ex: Execution, update_id: str, outcome: dict[str, Any], fx: Effects
) -> None:
    await tx.set_update_state(ex.run_id, update_id, UpdateState.COMPLETED, outcome)
    _settled(fx, ex.run_id, update_id)


async def pending_count(tx: Tx, ex: Execution) -> int:
    """Updates requested of the run and not yet accepted or rejected."""
    if not ex.updates_requested:
        return 0
    return len(await tx.updates_in_state(ex.run_id, (UpdateState.REQUESTED,)))
