"""Updates from the client: requests that change a workflow and return a result."""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from perdure._common.clock import Clock
from perdure._common.identifiers import check_optional_update_id
from perdure._errors import RPCTimeoutOrCancelledError, WorkflowUpdateFailedError
from perdure._store._types import UpdateRow, UpdateState
from perdure.client._connection import Connection
from perdure.converter._visitor import encode_within
from perdure.workflow._definition import _arg_and_return_types, handler_name

T = TypeVar("T")
_REAL = Clock()
POLL_INTERVAL = 0.1


class WorkflowUpdateStage(enum.IntEnum):
    """How far an update must have gone before ``start_update`` returns."""

    ADMITTED = 1
    """Recorded as requested (it will be validated by the workflow)."""
    ACCEPTED = 2
    """Its validator passed and it is in history; the handler is running or done."""
    COMPLETED = 3
    """The handler finished; the result is ready."""


class WorkflowUpdateHandle(Generic[T]):
    """An update that was sent: ``await handle.result()`` for its outcome."""

    def __init__(
        self,
        connection: Connection,
        id: str,
        workflow_id: str,
        name: str,
        *,
        workflow_run_id: str,
        result_type: Any = None,
    ) -> None:
        self._connection = connection
        self.id = id
        self.workflow_id = workflow_id
        self.workflow_run_id = workflow_run_id
        self.name = name
        self._result_type = result_type

    async def result(self, *, rpc_timeout: float | None = None) -> T:
        """Wait for the update to finish and return its result.

        Raises:
            WorkflowUpdateFailedError: the validator rejected it, the handler failed, or the
                workflow closed first; ``.cause`` says which.
            RPCTimeoutOrCancelledError: ``rpc_timeout`` passed first.
        """
        row = await self._wait(UpdateState.COMPLETED, rpc_timeout)
        outcome = row.outcome or {}
        conv = self._connection.data_converter
        if "result" in outcome:
            value: T = (await conv.decode([outcome["result"]], [self._result_type]))[0]
            return value
        failure = await self._connection.decode_failure(outcome.get("failure") or {})
        raise WorkflowUpdateFailedError(
            cause=conv.failure_converter.from_failure(failure, conv.payload_converter)
        )

    async def _follow_to_latest_run(self) -> UpdateRow:
        """The update went on to the run its workflow continued as new into."""
        row = await _moved_update(self)
        self.workflow_run_id = row.run_id
        return row

    async def _wait(self, stage: UpdateState, timeout: float | None) -> UpdateRow:
        store = self._connection.store
        key = ("update", self.workflow_run_id, self.id)
        flag = store.notifier.listen(key)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            # Unlike result(), waiting on an update does not move the time-skipping clock
            # (as in Temporal): a workflow sleeping meanwhile keeps sleeping.
            while True:
                flag.clear()
                row = await store.get_update(self.workflow_run_id, self.id)
                if row is None:
                    row = await self._follow_to_latest_run()
                if _reached(row.state, stage):
                    return row
                if deadline is not None and time.monotonic() >= deadline:
                    raise RPCTimeoutOrCancelledError(
                        f"Update {self.name!r} ({self.id}) of workflow {self.workflow_id!r} "
                        f"did not reach {stage.name} within {timeout:g}s: is a worker "
                        "running for its task queue?"
                    )
                await _REAL.wait(flag, _REAL.now() + POLL_INTERVAL)
        finally:
            store.notifier.forget(key)


async def _moved_update(handle: WorkflowUpdateHandle[Any]) -> UpdateRow:
    """Find an update that is no longer on its handle's run: a run that continues as new
    hands the updates it has not seen to the next one, which may continue as new in turn
    before this looks. Follow the runs from the handle's, not only to the latest run."""
    store = handle._connection.store
    run_id = handle.workflow_run_id
    while True:
        ex = await store.describe(handle._connection.namespace, handle.workflow_id, run_id)
        attrs = (ex.close_event or {}).get("attributes") or {}
        next_run_id = attrs.get("new_run_id")
        if not next_run_id:
            raise WorkflowUpdateFailedError(
                cause=RuntimeError(f"No update {handle.id!r} on workflow {handle.workflow_id!r}")
            )
        row = await store.get_update(next_run_id, handle.id)
        if row is not None:
            return row
        run_id = next_run_id


def _reached(state: UpdateState, wanted: UpdateState) -> bool:
    if state == UpdateState.REJECTED:
        return True  # settled: result() reports the failure
    return state >= wanted


_STAGE_STATE = {
    WorkflowUpdateStage.ADMITTED: UpdateState.REQUESTED,
    WorkflowUpdateStage.ACCEPTED: UpdateState.ACCEPTED,
    WorkflowUpdateStage.COMPLETED: UpdateState.COMPLETED,
}


async def send_update(
    connection: Connection,
    workflow_id: str,
    run_id: str | None,
    update: str | Callable[..., Any],
    args: Sequence[Any],
    *,
    id: str | None,
    wait_for_stage: WorkflowUpdateStage,
    result_type: Any,
    rpc_timeout: float | None,
    start: Any = None,
    header: dict[str, Any] | None = None,
    on_started: Callable[[str], None] | None = None,
) -> WorkflowUpdateHandle[Any]:
    """Request an update on the workflow and wait for ``wait_for_stage``; ``on_started`` is
    told the run id if the request (with ``start``) started the workflow."""
    client = connection
    name = handler_name(update, "update")
    if result_type is None and callable(update):
        result_type = _arg_and_return_types(update, skip_self=True)[1]
    update_id = check_optional_update_id(id) or str(uuid.uuid4())
    payloads = await client.data_converter.encode(list(args))
    if header:
        header = await encode_within(client.data_converter._store_codec, header)
    row, started = await client.store.request_update(
        client.namespace, workflow_id, run_id, update_id, name, payloads, start, header
    )
    if started is not None and on_started is not None:
        on_started(started.run_id)
    result: WorkflowUpdateHandle[Any] = WorkflowUpdateHandle(
        client,
        update_id,
        workflow_id,
        name,
        workflow_run_id=row.run_id,
        result_type=result_type,
    )
    row = await result._wait(_STAGE_STATE[wait_for_stage], rpc_timeout)
    if row.state == UpdateState.REJECTED and wait_for_stage != WorkflowUpdateStage.COMPLETED:
        await result.result()  # raises the rejection
    return result
