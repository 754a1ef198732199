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
from perdure.workflow._api import (
    execute_activity,
    info,
    logger,
    now,
    random,
    set_query_handler,
    set_signal_handler,
    sleep,
    start_activity,
    time,
    time_ns,
    unsafe,
    uuid4,
    wait_condition,
)
from perdure.workflow._context import NotInWorkflowError
from perdure.workflow._definition import defn, init, query, run, signal
from perdure.workflow._info import (
    ActivityCancellationType,
    ActivityHandle,
    ChildWorkflowCancellationType,
    Info,
    ParentClosePolicy,
    ParentInfo,
)

__all__ = [
    "ActivityCancellationType",
    "ActivityHandle",
    "ChildWorkflowCancellationType",
    "Info",
    "NondeterminismError",
    "NotInWorkflowError",
    "ParentClosePolicy",
    "ParentInfo",
    "RestrictedWorkflowAccessError",
    "defn",
    "execute_activity",
    "info",
    "init",
    "logger",
    "now",
    "query",
    "random",
    "run",
    "set_query_handler",
    "set_signal_handler",
    "signal",
    "sleep",
    "start_activity",
    "time",
    "time_ns",
    "unsafe",
    "uuid4",
    "wait_condition",
]
