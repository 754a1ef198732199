"""The patterns durable workflows are for, as tools: sagas, entity workflows, fan-out/fan-in,
async callbacks and human-in-the-loop waits, idempotency keys. docs/patterns.md shows each
with its example."""

from perdure.patterns._saga import CompensationError, Saga

__all__ = ["CompensationError", "Saga"]
