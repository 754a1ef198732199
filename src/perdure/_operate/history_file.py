"""History files: a run's history exported as JSON (``WorkflowHistory.to_json()``), and
imported back into a database as a closed run for inspection and replay."""

from __future__ import annotations

from pathlib import Path

from perdure._common.run_ids import new_run_id
from perdure._store._effects import Effects
from perdure._store._history_import import HistoryImportError, import_history
from perdure._store._tx import Tx
from perdure._store._types import Execution
from perdure.client import Client, WorkflowHistory

__all__ = ["HistoryImportError", "import_file", "read_file"]


def read_file(path: str | Path) -> WorkflowHistory:
    """A history file as written by ``perdure history export`` or ``to_json()``.

    Raises:
        HistoryImportError: the file cannot be read or is not such a history.
    """
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise HistoryImportError(f"Cannot read {path}: {exc.strerror}") from None
    try:
        return WorkflowHistory.from_json(None, text)
    except ValueError as exc:
        raise HistoryImportError(f"{path}: {exc}") from None


async def import_file(
    client: Client, path: str | Path, *, workflow_id: str | None = None
) -> Execution:
    """Import a history file into the client's namespace. It keeps its run id, unless it is
    imported under another ``workflow_id`` (then it gets a new one, so one file can be
    imported twice).

    Raises:
        HistoryImportError: unreadable file, malformed history, or its run already here.
        WorkflowAlreadyStartedError: an open run has this workflow id.
    """
    history = read_file(path)
    wf_id = workflow_id or history.workflow_id
    if not wf_id:
        raise HistoryImportError(f"{path} names no workflow id: give one with --workflow-id")
    run_id = history.run_id
    if (workflow_id and workflow_id != history.workflow_id) or not run_id:
        run_id = new_run_id()
    store = client.store
    note = f"imported from {Path(path).name}: the run was still open when it was exported"

    async def op(tx: Tx, fx: Effects) -> Execution:
        return await import_history(
            tx, client.namespace, wf_id, run_id, history.events, note, store.clock.now(), fx
        )

    return await store.transact(op)
