"""examples/inventory.py: reservations committed and released, over-reservation and other
refusals, reservations expiring on the virtual clock (across continue-as-new too), and the
script run as a user runs it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from example_support import EXAMPLES, load_example, run_example

from perdure import Worker
from perdure.client import Client, WorkflowUpdateFailedError
from perdure.testing import WorkflowEnvironment

SCRIPT = EXAMPLES / "inventory.py"

ex = load_example(SCRIPT)
Item = ex.StockItem
Reserve = ex.ReserveRequest
MINUTE = timedelta(minutes=1)


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with (
        await WorkflowEnvironment.start_time_skipping() as env,
        Worker(env.client, task_queue=ex.TASK_QUEUE, workflows=[Item]),
        # Time moves only when the test says so: a waiting client must not expire anything.
        env.auto_time_skipping_disabled(),
    ):
        yield env


async def refused(call: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    return str(info.value.cause)


async def history_length(client: Client, sku: str) -> int:
    length: int = (await ex.item_handle(client, sku).describe()).history_length
    return length


async def test_reserve_commit_release(env: WorkflowEnvironment) -> None:
    client = env.client
    assert await ex.receive_delivery(client, "mug", 10) == 10  # creates the item
    assert await ex.receive_delivery(client, "mug", 2) == 12  # finds it running
    assert len([w async for w in client.list_workflows("WorkflowId = 'item-mug'")]) == 1
    mug = ex.item_handle(client, "mug")

    a = await mug.execute_update(Item.reserve, Reserve("A", 5))
    assert (a.reservation_id, a.quantity) == ("A", 5)
    assert a.expires_at == await env.get_current_time() + timedelta(minutes=15)
    await mug.execute_update(Item.reserve, Reserve("B", 7))
    view = await mug.query(Item.view)
    assert (view.on_hand, view.reserved, view.available) == (12, 12, 0)

    assert await mug.execute_update(Item.commit, "A") == 7  # left on hand
    assert await mug.execute_update(Item.release, "B") == 7  # available
    view = await mug.query(Item.view)
    assert (view.on_hand, view.reserved, view.available, view.sold) == (7, 0, 7, 5)
    assert view.reservations == []


async def test_refusals_leave_no_trace(env: WorkflowEnvironment) -> None:
    client = env.client
    await ex.receive_delivery(client, "cup", 4)
    cup = ex.item_handle(client, "cup")
    await cup.execute_update(Item.reserve, Reserve("A", 3))
    before = await history_length(client, "cup")

    reserve = Item.reserve
    assert "only 1 x cup available, cannot reserve 2" in await refused(
        cup.execute_update(reserve, Reserve("B", 2))
    )
    assert "quantity must be at least 1, got 0" in await refused(
        cup.execute_update(reserve, Reserve("B", 0))
    )
    assert "reservation 'A' already exists" in await refused(
        cup.execute_update(reserve, Reserve("A", 1))
    )
    assert "no reservation 'Z'" in await refused(cup.execute_update(Item.commit, "Z"))
    assert "no reservation 'Z'" in await refused(cup.execute_update(Item.release, "Z"))
    assert "at least 1, got -5" in await refused(ex.receive_delivery(client, "cup", -5))
    assert await history_length(client, "cup") == before
    view = await cup.query(Item.view)
    assert (view.on_hand, view.reserved, view.available) == (4, 3, 1)


async def test_concurrent_reservations_never_oversell(env: WorkflowEnvironment) -> None:
    client = env.client
    await ex.receive_delivery(client, "lamp", 10)
    lamp = ex.item_handle(client, "lamp")
    results = await asyncio.gather(
        *(lamp.execute_update(Item.reserve, Reserve(f"r{i}", 3)) for i in range(6)),
        return_exceptions=True,
    )
    granted = [r for r in results if not isinstance(r, BaseException)]
    assert len(granted) == 3
    assert all(isinstance(r, WorkflowUpdateFailedError) for r in results if r not in granted)
    assert (await lamp.query(Item.view)).available == 1


async def test_uncommitted_reservations_expire(env: WorkflowEnvironment) -> None:
    client = env.client
    await ex.receive_delivery(client, "pen", 10)
    pen = ex.item_handle(client, "pen")
    await pen.execute_update(Item.reserve, Reserve("A", 4))
    await env.sleep(5 * MINUTE)
    await pen.execute_update(Item.reserve, Reserve("B", 5))  # expires 5 minutes after A
    await env.sleep(10 * MINUTE - timedelta(seconds=1))
    assert (await pen.query(Item.view)).available == 1
    await env.sleep(timedelta(seconds=2))  # A's 15 minutes are up
    view = await pen.query(Item.view)
    assert (view.available, view.expired) == (5, ["A"])
    assert "no reservation 'A' (it expired)" in await refused(pen.execute_update(Item.commit, "A"))
    assert await pen.execute_update(Item.commit, "B") == 5  # B is still held: committed
    await env.sleep(10 * MINUTE)
    view = await pen.query(Item.view)
    assert (view.on_hand, view.available, view.sold, view.expired) == (5, 5, 5, ["A"])
    events = [str(e.event_type) for e in (await pen.fetch_history()).events]
    assert events.count("TimerFired") == 1  # A's expiry; nothing after B was committed


async def test_expiry_survives_continue_as_new(env: WorkflowEnvironment) -> None:
    client = env.client
    await ex.receive_delivery(client, "hat", 100, reservation_timeout_seconds=60)
    hat = ex.item_handle(client, "hat")
    first_run = (await hat.describe()).run_id
    await hat.execute_update(Item.reserve, Reserve("early", 1))
    # Enough requests for perdure to suggest continuing as new (at 4,096 events).
    for i in range(700):
        await hat.execute_update(Item.reserve, Reserve(f"r{i}", 1))
        await hat.execute_update(Item.release, f"r{i}")
    assert (await hat.describe()).run_id != first_run
    assert [r.reservation_id for r in (await hat.query(Item.view)).reservations] == ["early"]
    await env.sleep(2 * MINUTE)
    view = await hat.query(Item.view)
    assert (view.expired, view.available) == (["early"], 100)


@pytest.mark.realtime
def test_script_runs(tmp_path: Path) -> None:
    out = run_example(SCRIPT, tmp_path / "inventory.db")
    assert re.search(r"delivery of 10 x mug-\w+ \(update-with-start\) -> available 10", out)
    assert re.search(r"reserve 3 for order-C -> REJECTED: only 1 x mug-\w+ available", out)
    assert re.search(r"history (\d+) events before the refusal, \1 after", out), out
    assert "commit order-A -> ok (6)" in out
    assert "order-B expired; query: on hand 6, reserved 0 (none), available 6, sold 4" in out
    assert "commit order-B -> REJECTED: no reservation 'order-B' (it expired)" in out
    assert "release order-C -> ok (6)" in out
