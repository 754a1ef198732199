"""An error of a statement (the database refused it, or the driver did before sending it) is
the operation's, reported at once as a ``PerdureError`` with the driver's error as ``.cause``:
never taken for a lost connection and tried again, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from perdure._errors import PerdureError
from perdure._store import Store
from perdure._store._effects import Effects
from perdure._store._tx import Tx
from perdure._store._types import StartWorkflowRequest

# Only a guard against the lost-connection retry loop (60 s), not a measure of speed.
GUARD = 30.0
# More bind parameters than either database takes (PostgreSQL: 32,767; SQLite: 32,766 in its
# default build, 250,000 in some).
TOO_MANY = 300_000


def _too_many_parameters(store: Store) -> tuple[str, list[str]]:
    """A ``where`` over executions with TOO_MANY parameters (numbered after the namespace)."""
    if store.dialect == "postgresql":
        marks = ", ".join(f"${i + 2}" for i in range(TOO_MANY))
    else:
        marks = ", ".join("?" * TOO_MANY)
    return f"e.run_id IN ({marks})", [str(i) for i in range(TOO_MANY)]


STATEMENTS = {
    "refused by the database": lambda store: ("no_such_column = 1", []),
    "refused by the driver": _too_many_parameters,
}


async def _start(store: Store, workflow_id: str) -> None:
    await store.start_workflow(
        StartWorkflowRequest(
            namespace="default",
            workflow_id=workflow_id,
            workflow_type="W",
            task_queue="q",
            input=[],
            run_id=str(uuid.uuid4()),
            task_timeout=10.0,
        )
    )


@pytest.mark.parametrize("statement", list(STATEMENTS))
async def test_a_read_whose_statement_fails_fails_at_once(store: Store, statement: str) -> None:
    where, params = STATEMENTS[statement](store)

    with pytest.raises(PerdureError) as caught:
        await asyncio.wait_for(
            store.read(lambda tx: tx.count_executions("default", where, params)), GUARD
        )

    assert "operation failed" in str(caught.value)
    assert caught.value.cause is not None
    assert not isinstance(caught.value.cause, PerdureError)


@pytest.mark.parametrize("statement", list(STATEMENTS))
async def test_an_operation_whose_statement_fails_fails_alone_at_once(
    store: Store, statement: str
) -> None:
    where, params = STATEMENTS[statement](store)

    async def failing(tx: Tx, fx: Effects) -> int:
        return await tx.count_executions("default", where, params)

    results = await asyncio.wait_for(
        asyncio.gather(
            _start(store, "before"),
            store.transact(failing),
            _start(store, "after"),
            return_exceptions=True,
        ),
        GUARD,
    )

    assert results[0] is None and results[2] is None
    assert isinstance(results[1], PerdureError)
    assert "operation failed" in str(results[1])
    assert await store.count_workflows("default", None) == 2
