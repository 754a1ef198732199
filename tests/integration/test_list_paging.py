"""Listing workflows a page at a time: every run once, in order, across pages, whatever the
filter and order; a page token continues only its own query; runs started or deleted between
pages neither repeat nor hide the others (keyset paging, not OFFSET)."""

from __future__ import annotations

import pytest

from perdure._errors import InvalidArgumentError
from perdure.client import Client, WorkflowExecution
from perdure.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from perdure.testing import WorkflowEnvironment

COLOR = SearchAttributeKey.for_keyword("Color")

QUERIES = [
    "",
    "WorkflowType = 'A'",
    "ExecutionStatus = 'Running'",
    "Color = 'red'",
    "Color IS NULL ORDER BY TaskQueue DESC, RunId",
    "ORDER BY StartTime",
    "ORDER BY CloseTime",
    "ORDER BY CloseTime DESC",
    "ExecutionStatus != 'Running' ORDER BY CloseTime DESC",
    "ORDER BY WorkflowType, StartTime DESC",
    "ORDER BY HistoryLength DESC, WorkflowId",
    "ORDER BY ExecutionStatus, HistoryLength",
    "StartTime > '1970-01-01T00:00:00Z' ORDER BY ExecutionTime DESC",
]


async def _runs(env: WorkflowEnvironment) -> None:
    """30 runs of two types, started in groups at the same instant (ties in StartTime), some
    signalled (HistoryLength), some terminated in pairs at one instant (ties in CloseTime),
    some with a Color, on two task queues."""
    handles = []
    for i in range(30):
        colors = {0: "red", 1: "blue"}
        attrs = None
        if i % 3 in colors:
            attrs = TypedSearchAttributes([SearchAttributePair(COLOR, colors[i % 3])])
        handle = await env.client.start_workflow(
            "A" if i % 4 else "B",
            id=f"wf-{i:02d}",
            task_queue=f"q{i % 2}",
            search_attributes=attrs,
        )
        for _ in range(i % 5):
            await handle.signal("poke")
        handles.append(handle)
        if i % 3 == 2:
            await env.sleep(1)
    for i in range(0, 30, 4):
        await handles[i].terminate()
        if i % 8:
            await env.sleep(1)


def _keys(executions: list[WorkflowExecution]) -> list[tuple[str, str]]:
    return [(e.id, e.run_id) for e in executions]


async def _page(client: Client, query: str, size: int, token: bytes | None) -> tuple[list, bytes]:
    # A fresh listing per page, from the token alone: as a web page of a listing is served.
    listing = client.list_workflows(query, page_size=size, next_page_token=token)
    await listing.fetch_next_page()
    assert listing.current_page is not None and listing.current_page_index == 0
    return list(listing.current_page), listing.next_page_token  # type: ignore[return-value]


async def test_pages_list_every_run_once_in_order(env: WorkflowEnvironment) -> None:
    await _runs(env)
    client = env.client
    for query in QUERIES:
        whole = _keys([e async for e in client.list_workflows(query)])
        assert len(set(whole)) == len(whole) == (await client.count_workflows(query)).count
        assert whole, query
        for size in (1, 4, 7):
            paged: list[tuple[str, str]] = []
            token = None
            while True:
                page, token = await _page(client, query, size, token)
                paged += _keys(page)
                assert len(page) == size or token is None, (query, size)
                if token is None:
                    break
            assert paged == whole, (query, size)
            # The iterator pages the same way.
            assert _keys([e async for e in client.list_workflows(query, page_size=size)]) == whole


async def test_runs_started_or_deleted_between_pages_neither_repeat_nor_hide_others(
    env: WorkflowEnvironment,
) -> None:
    await _runs(env)
    client = env.client
    before = _keys([e async for e in client.list_workflows()])
    listing = client.list_workflows(page_size=5)
    seen = [await anext(listing) for _ in range(5)]
    assert _keys(seen) == before[:5]
    # Newer runs sort first, ahead of the page read: OFFSET would show run 5 again.
    await env.sleep(10)
    for i in range(3):
        await client.start_workflow("A", id=f"new-{i}", task_queue="q0")
    # Runs of the page read are deleted, the last one included: OFFSET would skip two.
    for workflow_id, run_id in (before[1], before[4]):
        await client.get_workflow_handle(workflow_id, run_id=run_id).delete()
    # A run ahead is deleted: it is simply not listed.
    await client.get_workflow_handle(before[20][0], run_id=before[20][1]).delete()
    rest = _keys([e async for e in listing])
    assert rest == [k for k in before[5:] if k != before[20]]


async def test_a_page_token_continues_only_its_own_query(env: WorkflowEnvironment) -> None:
    await _runs(env)
    client = env.client
    query = "WorkflowType = 'A' AND ExecutionStatus = 'Running'"
    first, token = await _page(client, query, 3, None)
    # The same query, spaced and cased otherwise, takes it.
    same = "WorkflowType='A'   and ExecutionStatus = 'Running'"
    second, _ = await _page(client, same, 3, token)
    whole = _keys([e async for e in client.list_workflows(query)])
    assert _keys(first + second) == whole[:6]
    for other in ("WorkflowType = 'B'", "", f"{query} ORDER BY StartTime"):
        with pytest.raises(InvalidArgumentError, match="made for another query"):
            await _page(client, other, 3, token)
    with pytest.raises(InvalidArgumentError, match="not one perdure made"):
        await _page(client, query, 3, b"not a token")
    with pytest.raises(InvalidArgumentError, match="page_size must be at least 1"):
        client.list_workflows(query, page_size=0)


async def test_limit_and_fetch_next_page_page_size(env: WorkflowEnvironment) -> None:
    await _runs(env)
    client = env.client
    whole = _keys([e async for e in client.list_workflows()])
    assert _keys([e async for e in client.list_workflows(limit=7, page_size=3)]) == whole[:7]
    listing = client.list_workflows(page_size=3)
    assert listing.current_page is None and listing.next_page_token is None
    await listing.fetch_next_page(page_size=10)
    assert listing.current_page is not None
    assert _keys(list(listing.current_page)) == whole[:10]
    assert await anext(listing) == listing.current_page[0]
    assert listing.current_page_index == 1
    # The rest of the listing comes 3 at a time, after the page of 10.
    assert _keys([e async for e in listing]) == whole[1:]
    assert listing.next_page_token is None
