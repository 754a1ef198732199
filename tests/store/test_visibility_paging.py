"""The store's page tokens: one continues only the listing (query and namespace) it came
from, and a token perdure did not make is refused with the same clear error, never passed to
the database."""

from __future__ import annotations

import uuid

import orjson
import pytest

from perdure._common.clock import VirtualClock
from perdure._errors import InvalidArgumentError
from perdure._store import Store
from perdure._store._types import StartWorkflowRequest


async def _start(store: Store, namespace: str, workflow_id: str) -> None:
    await store.start_workflow(
        StartWorkflowRequest(
            namespace=namespace,
            workflow_id=workflow_id,
            workflow_type="W",
            task_queue="q",
            input=[],
            run_id=str(uuid.uuid4()),
            task_timeout=10.0,
        )
    )


async def test_a_token_continues_only_its_namespace_and_query(
    store: Store, clock: VirtualClock
) -> None:
    for i in range(5):
        await _start(store, "default", f"wf-{i}")
        await _start(store, "other", f"wf-{i}")
        clock.advance_to(clock.now() + 1)
    first = await store.list_workflows("default", None, 2)
    assert [e.workflow_id for e in first.executions] == ["wf-4", "wf-3"]
    assert first.next_page_token is not None
    second = await store.list_workflows("default", "", 2, first.next_page_token)
    assert [e.workflow_id for e in second.executions] == ["wf-2", "wf-1"]
    with pytest.raises(InvalidArgumentError, match="made for another query"):
        await store.list_workflows("other", None, 2, first.next_page_token)
    last = await store.list_workflows("default", None, 5, second.next_page_token)
    assert [e.workflow_id for e in last.executions] == ["wf-0"]
    assert last.next_page_token is None


@pytest.mark.parametrize(
    "key",
    [
        ["2026-01-01", "run"],  # a string where the start time (a number) goes
        [1.0, 7],  # a number where the run id goes
        [None, "run"],  # StartTime is never NULL
        [1.0],  # too short
        [1.0, "run", "extra"],  # too long
        [True, "run"],
    ],
)
async def test_a_tampered_token_is_refused_before_any_sql(store: Store, key: list[object]) -> None:
    await _start(store, "default", "wf")
    token = (await store.list_workflows("default", None, 1)).next_page_token
    assert token is None  # one run: no next page
    await _start(store, "default", "wf-2")
    token = (await store.list_workflows("default", None, 1)).next_page_token
    assert token is not None
    doc = orjson.loads(token)
    start = doc["k"][0]
    doc["k"] = key
    with pytest.raises(InvalidArgumentError, match="not one perdure made"):
        await store.list_workflows("default", None, 1, orjson.dumps(doc))
    # A whole number of seconds is a start time all the same (both runs started then).
    assert start == int(start)
    doc["k"] = [int(start), "~"]
    page = await store.list_workflows("default", None, 5, orjson.dumps(doc))
    assert len(page.executions) == 2
