"""Values shared by workflows, activities and clients: retry, id policies, priorities."""

from perdure._common.payload import RawValue
from perdure._errors import RetryState, TimeoutType
from perdure.common._enums import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from perdure.common._priority import Priority
from perdure.common._retry import RetryPolicy
from perdure.common._search_attributes import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

__all__ = [
    "Priority",
    "RawValue",
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
]
