"""Writing workflows: deterministic orchestration code, recorded in history and replayed.

Example::

    from datetime import timedelta
    from perdure import workflow

    @workflow.defn
    class Greeting:
        @workflow.run
        async def run(self, name: str) -> str:
            await workflow.sleep(timedelta(days=1))  # durable: survives restarts
            return f"Hello, {name}"
"""

from perdure._errors import NondeterminismError, RestrictedWorkflowAccessError
from perdure.workflow._activities import (
    execute_activity,
    execute_activity_method,
    execute_local_activity,
    execute_local_activity_method,
    start_activity,
    start_activity_method,
    start_local_activity,
    start_local_activity_method,
)
from perdure.workflow._api import (
    all_handlers_finished,
    continue_as_new,
    deprecate_patch,
    execute_child_workflow,
    get_external_workflow_handle,
    get_external_workflow_handle_for,
    info,
    logger,
    memo,
    memo_value,
    now,
    patched,
    random,
    set_query_handler,
    set_signal_handler,
    sleep,
    start_child_workflow,
    time,
    time_ns,
    unsafe,
    upsert_memo,
    upsert_search_attributes,
    uuid4,
    wait_condition,
)
from perdure.workflow._context import NotInWorkflowError
from perdure.workflow._definition import defn, init, query, run, signal, update
from perdure.workflow._errors import ContinueAsNewError
from perdure.workflow._handlers import get_query_handler, get_signal_handler, payload_converter
from perdure.workflow._info import (
    ActivityCancellationType,
    ActivityHandle,
    ChildWorkflowCancellationType,
    ChildWorkflowHandle,
    ExternalWorkflowHandle,
    Info,
    ParentClosePolicy,
    ParentInfo,
)
from perdure.workflow._wait import as_completed, wait

__all__ = [
    "ActivityCancellationType",
    "ActivityHandle",
    "ChildWorkflowCancellationType",
    "ChildWorkflowHandle",
    "ContinueAsNewError",
    "ExternalWorkflowHandle",
    "Info",
    "NondeterminismError",
    "NotInWorkflowError",
    "ParentClosePolicy",
    "ParentInfo",
    "RestrictedWorkflowAccessError",
    "all_handlers_finished",
    "as_completed",
    "continue_as_new",
    "defn",
    "deprecate_patch",
    "execute_activity",
    "execute_activity_method",
    "execute_child_workflow",
    "execute_local_activity",
    "execute_local_activity_method",
    "get_external_workflow_handle",
    "get_external_workflow_handle_for",
    "get_query_handler",
    "get_signal_handler",
    "info",
    "init",
    "logger",
    "memo",
    "memo_value",
    "now",
    "patched",
    "payload_converter",
    "query",
    "random",
    "run",
    "set_query_handler",
    "set_signal_handler",
    "signal",
    "sleep",
    "start_activity",
    "start_activity_method",
    "start_child_workflow",
    "start_local_activity",
    "start_local_activity_method",
    "time",
    "time_ns",
    "unsafe",
    "update",
    "upsert_memo",
    "upsert_search_attributes",
    "uuid4",
    "wait",
    "wait_condition",
]
