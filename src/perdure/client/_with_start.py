"""Update-with-start (Temporal's ``start_update_with_start_workflow``): the start half,
``WithStartWorkflowOperation``, and the client's two methods that send it with an update."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from perdure.client._inputs import (
    StartWorkflowUpdateWithStartInput,
    UpdateWithStartUpdateWorkflowInput,
)
from perdure.client._interceptor import OutboundInterceptor
from perdure.client._outbound import with_start_input
from perdure.client._update import WorkflowUpdateHandle, WorkflowUpdateStage
from perdure.common._enums import WorkflowIDConflictPolicy
from perdure.workflow._definition import _arg_and_return_types, handler_name

# "No argument given" (None is an argument).
ARG_UNSET: Any = object()


class WithStartWorkflowOperation:
    """The start half of update-with-start: the same arguments as ``start_workflow``
    (``id_conflict_policy`` is required: usually ``USE_EXISTING``).

    After the operation, ``await op.workflow_handle()`` gives the workflow's handle.
    """

    def __init__(
        self,
        workflow: str | Callable[..., Any],
        arg: Any = ARG_UNSET,
        *,
        id_conflict_policy: WorkflowIDConflictPolicy,
        **options: Any,
    ) -> None:
        self.workflow = workflow
        self.arg = arg
        self.options = {"id_conflict_policy": id_conflict_policy, **options}
        self._handle: Any = None

    def _started(self, handle: Any) -> None:
        self._handle = handle

    async def workflow_handle(self) -> Any:
        if self._handle is None:
            raise RuntimeError("The operation has not been run by the client yet")
        return self._handle


class UpdateWithStartMethods:
    """The update-with-start methods of a ``Client``."""

    # The client's interceptor chain (set by Client.__init__).
    _outbound: OutboundInterceptor

    async def start_update_with_start_workflow(
        self,
        update: str | Callable[..., Any],
        arg: Any = ARG_UNSET,
        *,
        start_workflow_operation: WithStartWorkflowOperation,
        args: Sequence[Any] = (),
        id: str | None = None,
        wait_for_stage: WorkflowUpdateStage = WorkflowUpdateStage.ACCEPTED,
        result_type: Any = None,
        rpc_timeout: float | None = None,
    ) -> WorkflowUpdateHandle[Any]:
        """Start the workflow (or use the running one, per the operation's
        ``id_conflict_policy``) and send it an update, in one transaction.

        Example::

            start = WithStartWorkflowOperation(Cart.run, id="cart-7", task_queue="shop",
                                               id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
            total = await client.execute_update_with_start_workflow(
                Cart.add_item, item, start_workflow_operation=start)
        """
        op = start_workflow_operation
        if arg is not ARG_UNSET:
            args = (arg,)
        name = handler_name(update, "update")
        if result_type is None and callable(update):
            result_type = _arg_and_return_types(update, skip_self=True)[1]
        call = StartWorkflowUpdateWithStartInput(
            start_workflow_input=with_start_input(op.workflow, op.arg, op.options, ARG_UNSET),
            update_workflow_input=UpdateWithStartUpdateWorkflowInput(
                id, name, list(args), wait_for_stage, {}, result_type
            ),
            rpc_timeout=None if rpc_timeout is None else timedelta(seconds=rpc_timeout),
            _on_start=op._started,
        )
        return await self._outbound.start_update_with_start_workflow(call)

    async def execute_update_with_start_workflow(
        self,
        update: str | Callable[..., Any],
        arg: Any = ARG_UNSET,
        *,
        start_workflow_operation: WithStartWorkflowOperation,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: Any = None,
        rpc_timeout: float | None = None,
    ) -> Any:
        """:meth:`start_update_with_start_workflow`, waiting for the update's result."""
        handle = await self.start_update_with_start_workflow(
            update,
            arg,
            start_workflow_operation=start_workflow_operation,
            args=args,
            id=id,
            wait_for_stage=WorkflowUpdateStage.COMPLETED,
            result_type=result_type,
            rpc_timeout=rpc_timeout,
        )
        return await handle.result()
