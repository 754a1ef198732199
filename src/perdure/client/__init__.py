"""Starting workflows and talking to them: ``Client.connect("sqlite:///app.db")``."""

from perdure._common.status import PendingActivityState, WorkflowExecutionStatus
from perdure._errors import (
    RPCTimeoutOrCancelledError,
    WorkflowAlreadyStartedError,
    WorkflowFailureError,
    WorkflowNotFoundError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from perdure._store._visibility_query import VisibilityQueryError
from perdure.client._async_activity import (
    AsyncActivityCancelledError,
    AsyncActivityHandle,
    AsyncActivityNotFoundError,
)
from perdure.client._client import (
    Client,
    ClientConfig,
    WithStartWorkflowOperation,
    WorkflowExecution,
    WorkflowExecutionCount,
    WorkflowExecutionCountAggregationGroup,
)
from perdure.client._description import (
    ActivityType,
    PendingActivityInfo,
    PendingChildInfo,
    WorkflowExecutionRawDescription,
    WorkflowResetInfo,
)
from perdure.client._handle import (
    WorkflowExecutionDescription,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowTaskFailureInfo,
)
from perdure.client._history_events import WorkflowHistoryEventAsyncIterator
from perdure.client._listing import WorkflowExecutionAsyncIterator
from perdure.client._update import WorkflowUpdateHandle, WorkflowUpdateStage
from perdure.common._enums import ResetType, WorkflowIDConflictPolicy, WorkflowIDReusePolicy

__all__ = [
    "ActivityType",
    "AsyncActivityCancelledError",
    "AsyncActivityHandle",
    "AsyncActivityNotFoundError",
    "Client",
    "ClientConfig",
    "PendingActivityInfo",
    "PendingActivityState",
    "PendingChildInfo",
    "RPCTimeoutOrCancelledError",
    "ResetType",
    "VisibilityQueryError",
    "WithStartWorkflowOperation",
    "WorkflowAlreadyStartedError",
    "WorkflowExecution",
    "WorkflowExecutionAsyncIterator",
    "WorkflowExecutionCount",
    "WorkflowExecutionCountAggregationGroup",
    "WorkflowExecutionDescription",
    "WorkflowExecutionRawDescription",
    "WorkflowExecutionStatus",
    "WorkflowFailureError",
    "WorkflowHandle",
    "WorkflowHistory",
    "WorkflowHistoryEventAsyncIterator",
    "WorkflowIDConflictPolicy",
    "WorkflowIDReusePolicy",
    "WorkflowNotFoundError",
    "WorkflowQueryFailedError",
    "WorkflowResetInfo",
    "WorkflowTaskFailureInfo",
    "WorkflowUpdateFailedError",
    "WorkflowUpdateHandle",
    "WorkflowUpdateStage",
]
