"""The patterns durable workflows are for, as tools: sagas, entity workflows, fan-out/fan-in,
async callbacks and human-in-the-loop waits, idempotency keys. docs/patterns.md shows each
with its example."""

from perdure.patterns._entity import EntityWorkflow
from perdure.patterns._fan_out import (
    FanOutResult,
    ItemOutcome,
    ItemStatus,
    map_activity,
    map_child_workflows,
    map_concurrently,
)
from perdure.patterns._fan_out_batches import (
    FanOutBatch,
    FanOutSummary,
    ItemFailure,
    map_activity_in_batches,
)
from perdure.patterns._hand_off import HandOff, hand_off
from perdure.patterns._idempotency import idempotency_key
from perdure.patterns._saga import CompensationError, Saga
from perdure.patterns._waiting import Escalation, Reminder, WaitOutcome, wait_until

__all__ = [
    "CompensationError",
    "EntityWorkflow",
    "Escalation",
    "FanOutBatch",
    "FanOutResult",
    "FanOutSummary",
    "HandOff",
    "ItemFailure",
    "ItemOutcome",
    "ItemStatus",
    "Reminder",
    "Saga",
    "WaitOutcome",
    "hand_off",
    "idempotency_key",
    "map_activity",
    "map_activity_in_batches",
    "map_child_workflows",
    "map_concurrently",
    "wait_until",
]
