"""What the UI needs on a big database, through the HTTP API on each store: counts that
stop at ``max_count`` (with the counts of each status), and a long history whose first page
is one page, not the whole history."""

from __future__ import annotations

import dataclasses

import pytest
from server_support import InProcess

from perdure._common.events import EventType
from perdure._common.status import WorkflowExecutionStatus
from perdure._store._effects import Effects
from perdure._store._history_import import import_history
from perdure._store._tx import Tx
from perdure._store._types import Execution
from perdure.client._history_events import DEFAULT_PAGE_SIZE
from perdure.exceptions import InvalidArgumentError

COUNT = "/api/v1/workflows/count"
# (status, how many runs of type Order, of type Refund)
SEEDED = [
    (WorkflowExecutionStatus.RUNNING, 2, 1),
    (WorkflowExecutionStatus.COMPLETED, 5, 2),
    (WorkflowExecutionStatus.FAILED, 1, 0),
]


async def _seed(app: InProcess) -> None:
    def run(n: int, status: WorkflowExecutionStatus, kind: str) -> Execution:
        closed = status is not WorkflowExecutionStatus.RUNNING
        return Execution(
            run_id=f"run-{n}",
            namespace="default",
            workflow_id=f"wf-{n}",
            workflow_type=kind,
            task_queue="q",
            status=status,
            next_event_id=3,
            start_time=1000.0 + n,
            task_timeout=10.0,
            close_time=1001.0 + n if closed else None,
            first_run_id=f"run-{n}",
        )

    rows = []
    for status, orders, refunds in SEEDED:
        rows += [(status, "Order")] * orders + [(status, "Refund")] * refunds

    async def op(tx: Tx, fx: Effects) -> None:
        for n, (status, kind) in enumerate(rows):
            await tx.insert_execution(run(n, status, kind))

    await app.client.store.transact(op)


async def test_counts_stop_at_max_count_per_status(on_store: InProcess) -> None:
    await _seed(on_store)
    headers = on_store.auth(on_store.read)

    async def count(**params: object) -> object:
        response = await on_store.http.get(COUNT, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    assert await count() == {"count": 11}
    assert await count(max_count=100) == {"count": 11, "capped": False}
    assert await count(max_count=4) == {"count": 4, "capped": True}
    assert await count(query="GROUP BY ExecutionStatus") == {
        "count": 11,
        "groups": [
            {"status": "RUNNING", "count": 3},
            {"status": "COMPLETED", "count": 7},
            {"status": "FAILED", "count": 1},
        ],
    }
    # Each status's count stops at max_count, after the query's own conditions.
    assert await count(query="WorkflowType = 'Order' GROUP BY ExecutionStatus", max_count=2) == {
        "count": 5,
        "groups": [
            {"status": "RUNNING", "count": 2},
            {"status": "COMPLETED", "count": 2},
            {"status": "FAILED", "count": 1},
        ],
        "capped": True,
    }
    assert await count(query="ExecutionStatus = 'Canceled' GROUP BY ExecutionStatus") == {
        "count": 0,
        "groups": [],
    }
    client = on_store.client
    capped = await client.count_workflows("WorkflowType = 'Refund'", max_count=2)
    assert capped.count == 2
    with pytest.raises(InvalidArgumentError, match="max_count must be at least 1, got 0"):
        await client.count_workflows(max_count=0)
    refused = await on_store.http.get(COUNT, params={"max_count": 0}, headers=headers)
    assert refused.status_code in (400, 422), refused.text


async def test_the_first_page_of_a_long_history_is_one_page(on_store: InProcess) -> None:
    client = on_store.client
    # A real run's events (started, then a signal; no worker), the signal repeated into a
    # history longer than a page, imported as a closed run.
    handle = await client.start_workflow("Chatty", id="short", task_queue="nobody")
    await handle.signal("ping", 1)
    started, signalled = (await handle.fetch_history()).events[:2]
    assert signalled.event_type is EventType.WORKFLOW_EXECUTION_SIGNALED
    length = DEFAULT_PAGE_SIZE + 300
    events = [started] + [dataclasses.replace(signalled, event_id=i) for i in range(2, length + 1)]

    async def op(tx: Tx, fx: Effects) -> Execution:
        now = client.store.clock.now()
        return await import_history(tx, "default", "long", "long-run", events, "test", now, fx)

    await client.store.transact(op)
    headers = on_store.auth(on_store.read)
    path = "/api/v1/workflows/long/history"
    first = (await on_store.http.get(path, headers=headers)).json()
    assert [e["event_id"] for e in first["events"]] == list(range(1, 1001))
    assert first["next_page_token"] is not None
    rest = await on_store.http.get(
        path, params={"next_page_token": first["next_page_token"]}, headers=headers
    )
    # The import closes the run with a WorkflowExecutionTerminated event: one more.
    assert [e["event_id"] for e in rest.json()["events"]] == list(range(1001, length + 2))
    assert rest.json()["next_page_token"] is None

    paged = client.get_workflow_handle("long").fetch_history_events()
    await paged.fetch_next_page()
    assert len(paged.current_page or ()) == DEFAULT_PAGE_SIZE
    assert paged.next_page_token is not None
