"""The order a task queue hands out tasks in, on SQLite and PostgreSQL alike: lower priority
keys first; within a key, fairness keys share the queue in proportion to their weights; tasks
of no fairness key go first, in the order they became ready."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from storerows import start_request

from perdure._store import Store
from perdure._store._types import StartWorkflowRequest
from perdure.common import Priority
from perdure.common._priority import priority_dict


def request(workflow_id: str, priority: Priority | None = None) -> StartWorkflowRequest:
    return start_request(workflow_id, priority=priority_dict(priority))


async def start_all(store: Store, requests: list[StartWorkflowRequest]) -> None:
    for i in range(0, len(requests), 200):  # started together: group-committed
        await asyncio.gather(*(store.start_workflow(r) for r in requests[i : i + 200]))


async def claim_order(store: Store, one_by_one: int | None = None) -> list[str]:
    """The workflow ids, in the order a worker with one slot takes their tasks (after the
    first ``one_by_one`` claims, the rest in one claim: the same order, in fewer
    transactions)."""
    order: list[str] = []
    while tasks := await store.claim_workflow_tasks(
        "default", "q", "w", 1 if one_by_one is None or len(order) < one_by_one else 10_000
    ):
        order.extend(t.workflow_id for t in tasks)
    return order


async def test_a_small_tenant_is_not_stuck_behind_a_large_one(store: Store) -> None:
    big = [request(f"a-{i}", Priority(fairness_key="tenant-a")) for i in range(1000)]
    small = [request(f"b-{i}", Priority(fairness_key="tenant-b")) for i in range(10)]
    await start_all(store, big)
    await start_all(store, small)  # queued after all of tenant A's
    order = await claim_order(store, one_by_one=40)
    assert len(order) == 1010
    b_positions = [i for i, wid in enumerate(order) if wid.startswith("b-")]
    # Equal weights: the two tenants take turns while both have tasks queued.
    assert b_positions[-1] < 25, b_positions
    # Each tenant's own tasks still come in the order they were queued.
    assert [w for w in order if w.startswith("b-")] == [f"b-{i}" for i in range(10)]
    assert [w for w in order if w.startswith("a-")] == [f"a-{i}" for i in range(1000)]


async def test_fairness_weights_share_the_queue_in_proportion(store: Store) -> None:
    heavy = [request(f"h-{i}", Priority(fairness_key="h", fairness_weight=3.0)) for i in range(60)]
    light = [request(f"l-{i}", Priority(fairness_key="l")) for i in range(60)]
    await start_all(store, light)
    await start_all(store, heavy)
    order = await claim_order(store)
    first = collections.Counter(w[0] for w in order[:40])
    # Three turns to one (give or take the turn each started on).
    assert 29 <= first["h"] <= 31 and first["h"] + first["l"] == 40, first


async def test_lower_priority_keys_go_first(store: Store) -> None:
    reqs: list[Any] = [
        request(f"p{k}-{i}", Priority(priority_key=k)) for k in (5, 3, 1) for i in range(3)
    ]
    reqs += [request(f"none-{i}") for i in range(3)]
    await start_all(store, reqs)
    order = await claim_order(store)
    keys = [w.split("-")[0] for w in order]
    assert keys == ["p1"] * 3 + ["p3"] * 3 + ["none"] * 3 + ["p5"] * 3 or keys == (
        ["p1"] * 3 + ["none"] * 3 + ["p3"] * 3 + ["p5"] * 3
    )


async def test_an_idle_tenant_saves_up_no_turns(store: Store) -> None:
    # Tenant B ran long ago; tenant A has queued since: B's new tasks interleave with A's
    # from where the queue is, instead of taking turns it did not use.
    await start_all(store, [request(f"b-old-{i}", Priority(fairness_key="b")) for i in range(5)])
    assert len(await claim_order(store)) == 5
    await start_all(store, [request(f"a-{i}", Priority(fairness_key="a")) for i in range(50)])
    for _ in range(20):
        await store.claim_workflow_tasks("default", "q", "w", 1)
    await start_all(store, [request(f"b-{i}", Priority(fairness_key="b")) for i in range(5)])
    order = await claim_order(store)
    b_positions = [i for i, wid in enumerate(order) if wid.startswith("b-")]
    # Turn for turn with A from here on: neither ahead of A's queued tasks nor behind them.
    assert b_positions == [2, 4, 6, 8, 10], order[:12]
