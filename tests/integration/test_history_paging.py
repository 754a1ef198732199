"""Reading a history a page at a time: ``fetch_history_events(page_size=...)`` reads it in
pages that a token continues, ``fetch_history()`` still reads it whole, and following a
history (``wait_new_event``) ends after the closing event."""

from __future__ import annotations

import asyncio

import pytest

from perdure._common.events import EventType, HistoryEvent
from perdure._errors import InvalidArgumentError
from perdure.testing import WorkflowEnvironment


async def test_a_history_reads_a_page_at_a_time(env: WorkflowEnvironment) -> None:
    client = env.client
    # No worker: each signal is an event of the history (1 started + 40 signalled).
    handle = await client.start_workflow("W", id="long", task_queue="nobody")
    for i in range(40):
        await handle.signal("poke", i)
    whole = (await handle.fetch_history()).events
    assert [e.event_id for e in whole] == list(range(1, 42))

    events = handle.fetch_history_events(page_size=7)
    assert events.current_page is None
    await events.fetch_next_page()
    assert events.current_page is not None
    assert [e.event_id for e in events.current_page] == list(range(1, 8))
    token = events.next_page_token
    assert token is not None
    # A token continues after its page, from another iterator (a later request).
    later = client.get_workflow_handle("long").fetch_history_events(next_page_token=token)
    await later.fetch_next_page(page_size=30)
    assert later.current_page is not None
    assert [e.event_id for e in later.current_page] == list(range(8, 38))
    assert [e.event_id async for e in later] == list(range(8, 42))
    assert later.next_page_token is None
    # Iterating reads every page in order.
    assert [e async for e in handle.fetch_history_events(page_size=7)] == list(whole)
    assert [e async for e in handle.fetch_history_events(page_size=41)] == list(whole)
    after = handle.fetch_history_events(page_size=5, after_event_id=38)
    assert [e.event_id async for e in after] == [39, 40, 41]

    other = await client.start_workflow("W", id="other", task_queue="nobody")
    with pytest.raises(InvalidArgumentError, match="not of run"):
        other.fetch_history_events(next_page_token=token)
    with pytest.raises(InvalidArgumentError, match="not a history page token"):
        handle.fetch_history_events(next_page_token=b"{}")
    with pytest.raises(InvalidArgumentError, match="page_size must be at least 1"):
        handle.fetch_history_events(page_size=0)


async def test_following_a_history_ends_after_the_closing_event(env: WorkflowEnvironment) -> None:
    handle = await env.client.start_workflow("W", id="followed", task_queue="nobody")
    seen: list[HistoryEvent] = []
    two = asyncio.Event()

    async def follow() -> None:
        async for event in handle.fetch_history_events(page_size=2, wait_new_event=True):
            seen.append(event)
            if len(seen) == 2:
                two.set()

    follower = asyncio.create_task(follow())
    await handle.signal("poke", 1)
    await two.wait()
    for i in range(2, 6):
        await handle.signal("poke", i)
    await handle.terminate("done")
    await asyncio.wait_for(follower, 30)  # a guard only: it ends on the closing event
    assert [e.event_id for e in seen] == list(range(1, 8))
    assert seen[-1].event_type is EventType.WORKFLOW_EXECUTION_TERMINATED
