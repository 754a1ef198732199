"""The public surface is deliberate: every public package exports a curated ``__all__``."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "perdure": {
        "ActivityError",
        "ApplicationError",
        "CancelledError",
        "ChildWorkflowError",
        "Client",
        "FailureError",
        "NondeterminismError",
        "PerdureError",
        "Replayer",
        "RetryPolicy",
        "TerminatedError",
        "TimeoutError",
        "Worker",
        "WorkflowAlreadyStartedError",
        "WorkflowExecutionStatus",
        "WorkflowFailureError",
        "WorkflowHandle",
        "activity",
        "workflow",
    },
    "perdure.workflow": {
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
        "info",
        "init",
        "logger",
        "memo",
        "memo_value",
        "now",
        "patched",
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
        "wait_condition",
    },
    "perdure.activity": {
        "ActivityDefinition",
        "CompleteAsyncError",
        "Info",
        "NotInActivityError",
        "defn",
        "heartbeat",
        "in_activity",
        "info",
        "is_cancelled",
        "is_worker_shutdown",
        "logger",
        "raise_complete_async",
        "wait_for_cancelled",
        "wait_for_cancelled_sync",
    },
    "perdure.client": {
        "AsyncActivityCancelledError",
        "AsyncActivityHandle",
        "AsyncActivityNotFoundError",
        "Client",
        "RPCTimeoutOrCancelledError",
        "VisibilityQueryError",
        "WithStartWorkflowOperation",
        "WorkflowAlreadyStartedError",
        "WorkflowExecution",
        "WorkflowExecutionAsyncIterator",
        "WorkflowExecutionCount",
        "WorkflowExecutionDescription",
        "WorkflowExecutionStatus",
        "WorkflowFailureError",
        "WorkflowHandle",
        "WorkflowHistory",
        "WorkflowIDConflictPolicy",
        "WorkflowIDReusePolicy",
        "WorkflowNotFoundError",
        "WorkflowQueryFailedError",
        "WorkflowTaskFailureInfo",
        "WorkflowUpdateFailedError",
        "WorkflowUpdateHandle",
        "WorkflowUpdateStage",
    },
    "perdure.contrib.pydantic": {"PydanticPayloadConverter", "pydantic_data_converter"},
    "perdure.worker": {"Replayer", "Worker", "WorkflowReplayResult"},
    "perdure.testing": {"ActivityEnvironment", "WorkflowEnvironment"},
    "perdure.common": {
        "RetryPolicy",
        "RetryState",
        "SearchAttributeIndexedValueType",
        "SearchAttributeKey",
        "SearchAttributePair",
        "SearchAttributeUpdate",
        "TimeoutType",
        "TypedSearchAttributes",
        "WorkflowIDConflictPolicy",
        "WorkflowIDReusePolicy",
    },
    "perdure.exceptions": {
        "ActivityError",
        "ApplicationError",
        "CancelledError",
        "ChildWorkflowError",
        "FailureError",
        "InvalidURLError",
        "PayloadSizeError",
        "PerdureError",
        "RetryState",
        "SchemaVersionError",
        "SearchAttributeTypeError",
        "ServerError",
        "TerminatedError",
        "TimeoutError",
        "TimeoutType",
    },
    "perdure.converter": {
        "AesGcmCodec",
        "BinaryNullPayloadConverter",
        "BinaryPlainPayloadConverter",
        "CompositeCodec",
        "CompositePayloadConverter",
        "DataConverter",
        "DefaultPayloadConverter",
        "EncodingPayloadConverter",
        "FailureConverter",
        "JSONPlainPayloadConverter",
        "Payload",
        "PayloadCodec",
        "PayloadConverter",
        "ZlibCodec",
    },
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_exported_names_are_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == PUBLIC[module_name]
    for name in module.__all__:
        assert not name.startswith("_")
        assert getattr(module, name) is not None


def test_temporal_names_live_where_temporal_keeps_them() -> None:
    from perdure.client import WorkflowFailureError
    from perdure.exceptions import ApplicationError
    from perdure.worker import Replayer
    from perdure.workflow import NondeterminismError

    assert WorkflowFailureError.__name__ == "WorkflowFailureError"
    assert issubclass(ApplicationError, importlib.import_module("perdure").PerdureError)
    assert Replayer.__module__.startswith("perdure.worker")
    assert issubclass(NondeterminismError, Exception)
