"""examples/shopping_cart.py: its workflow on the virtual clock (validators, signals, queries,
continue-as-new, checkout, expiry), and the script run as a user runs it."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from example_support import EXAMPLES, load_example, run_example

from perdure import Worker, WorkflowExecutionStatus
from perdure.client import Client, WorkflowNotFoundError, WorkflowUpdateFailedError
from perdure.testing import WorkflowEnvironment

SCRIPT = EXAMPLES / "shopping_cart.py"

ex = load_example(SCRIPT)
Cart = ex.ShoppingCart
Line = ex.CartLine


async def history_length(client: Client, workflow_id: str) -> int:
    length: int = (await client.get_workflow_handle(workflow_id).describe()).history_length
    return length


async def runs_of(client: Client, workflow_id: str) -> list[Any]:
    return [wf async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'")]


async def test_cart_workflow_scenarios() -> None:
    async with (
        await WorkflowEnvironment.start_time_skipping() as env,
        Worker(
            env.client,
            task_queue=ex.TASK_QUEUE,
            workflows=[Cart],
            activities=[ex.place_order, ex.send_abandoned_cart_email],
        ),
        # Time moves only when the test says so (env.sleep). By default the environment also
        # skips ahead while a client call waits, which could expire a cart under our feet.
        env.auto_time_skipping_disabled(),
    ):
        await updates_signals_queries_continue_as_new_checkout(env)
        await abandoned_cart_expires_after_inactivity(env)


async def updates_signals_queries_continue_as_new_checkout(env: WorkflowEnvironment) -> None:
    client = env.client
    settings = ex.CartSettings(inactivity_timeout_seconds=30 * 60, changes_per_run=4)
    cart = ex.cart_handle(client, "ann")

    # Update-with-start creates the cart, then finds the running one.
    assert await ex.add_to_cart(client, "ann", Line("mug", 2), settings) == 1800
    first_run = (await cart.describe()).run_id
    assert await ex.add_to_cart(client, "ann", Line("grinder"), settings) == 10700
    assert (await cart.describe()).run_id == first_run
    assert len(await runs_of(client, "cart-ann")) == 1

    # Refused updates: the caller learns why, and neither history nor state changes.
    before = await history_length(client, "cart-ann")
    refused = [
        (Cart.add_item, Line("unicorn", 1), "unknown product 'unicorn'"),
        (Cart.add_item, Line("mug", 0), "quantity must be at least 1"),
        (Cart.add_item, Line("mug", -3), "quantity must be at least 1"),
        (Cart.remove_item, Line("coffee-beans", 1), "no coffee-beans in the cart"),
        (Cart.remove_item, Line("mug", 5), "only 2 x mug in the cart"),
    ]
    for update, line, reason in refused:
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await cart.execute_update(update, line)
        assert reason in str(info.value.cause)
    assert await history_length(client, "cart-ann") == before
    assert await cart.query(Cart.total) == 10700
    assert await history_length(client, "cart-ann") == before  # queries write nothing

    # Signals: a good one is applied (change 3), a bad one ignored and noted.
    await cart.signal(Cart.add_item_signal, Line("filter-papers", 3))
    await cart.signal(Cart.add_item_signal, Line("unicorn", 1))
    await env.sleep(0)  # let the worker process them (no virtual time passes)
    view = await cart.query(Cart.view)
    assert view.items == {"mug": 2, "grinder": 1, "filter-papers": 3}
    assert view.total_cents == 1800 + 8900 + 1275
    assert view.ignored_signals == ["add 1 x unicorn: unknown product 'unicorn'"]
    assert view.run_number == 1

    # Change 4 reaches changes_per_run: the cart continues as new, carrying its state.
    assert await cart.execute_update(Cart.remove_item, Line("mug", 1)) == 900 + 8900 + 1275
    await env.sleep(0)
    second = await cart.describe()
    assert second.run_id != first_run
    assert second.status == WorkflowExecutionStatus.RUNNING
    first = client.get_workflow_handle("cart-ann", run_id=first_run)
    assert (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    assert len(await runs_of(client, "cart-ann")) == 2
    view = await cart.query(Cart.view)
    assert (view.run_number, view.changes) == (2, 4)
    assert view.items == {"mug": 1, "grinder": 1, "filter-papers": 3}
    assert view.ignored_signals == ["add 1 x unicorn: unknown product 'unicorn'"]
    assert second.history_length < before  # the new run's history starts short

    # Four more changes (by update, signal and update-with-start) make a third run.
    await cart.execute_update(Cart.add_item, Line("coffee-beans", 1))
    await cart.signal(Cart.remove_item_signal, Line("coffee-beans", 1))
    await cart.signal(Cart.add_item_signal, Line("mug", 1))
    assert await ex.add_to_cart(client, "ann", Line("mug", 1), settings) == 2700 + 8900 + 1275
    await env.sleep(0)
    assert len(await runs_of(client, "cart-ann")) == 3
    assert (await cart.query(Cart.view)).run_number == 3

    # Checkout: the update returns the order summary and the workflow ends.
    summary = await cart.execute_update(Cart.checkout)
    assert summary.customer_id == "ann"
    assert [(line.product, line.quantity) for line in summary.lines] == [
        ("filter-papers", 3),
        ("grinder", 1),
        ("mug", 3),
    ]
    assert summary.total_cents == 1275 + 8900 + 2700
    outcome = await cart.result()
    assert outcome.status == "checked_out"
    assert outcome.runs == 3
    assert outcome.order.order_id == summary.order_id
    assert (await cart.describe()).status == WorkflowExecutionStatus.COMPLETED
    with pytest.raises(WorkflowNotFoundError, match="already closed"):
        await cart.execute_update(Cart.checkout)


async def abandoned_cart_expires_after_inactivity(env: WorkflowEnvironment) -> None:
    client = env.client
    await ex.add_to_cart(client, "bo", Line("grinder"))  # default: 30 minutes
    bo = ex.cart_handle(client, "bo")
    await env.sleep(timedelta(minutes=20))
    await bo.execute_update(Cart.add_item, Line("mug", 1))  # restarts the 30 minutes
    await env.sleep(timedelta(minutes=29, seconds=58))
    assert (await bo.describe()).status == WorkflowExecutionStatus.RUNNING
    await env.sleep(timedelta(seconds=4))  # now 30 minutes since the last change
    assert (await bo.describe()).status == WorkflowExecutionStatus.COMPLETED
    expired = await bo.result()
    assert expired.status == "expired"
    assert expired.items == {"grinder": 1, "mug": 1}
    events = (await bo.fetch_history()).events
    timers = [str(e.event_type) for e in events if "Timer" in str(e.event_type)]
    # One timer per wait: the change cancelled the first, the second fired.
    assert timers == ["TimerStarted", "TimerCanceled", "TimerStarted", "TimerFired"]
    assert "ActivityTaskCompleted" in [str(e.event_type) for e in events]  # the email

    # "Add to cart" on an expired cart starts a new cart under the same id.
    assert await ex.add_to_cart(client, "bo", Line("mug", 1)) == 900
    assert len(await runs_of(client, "cart-bo")) == 2


async def test_concurrent_changes_across_continue_as_new_are_not_lost() -> None:
    settings = ex.CartSettings(changes_per_run=3)
    async with (
        await WorkflowEnvironment.start_time_skipping() as env,
        Worker(env.client, task_queue=ex.TASK_QUEUE, workflows=[Cart]),
        env.auto_time_skipping_disabled(),
    ):
        await ex.add_to_cart(env.client, "cy", Line("mug", 1), settings)
        cart = ex.cart_handle(env.client, "cy")
        for _ in range(3):
            adds = [cart.execute_update(Cart.add_item, Line("mug", 1)) for _ in range(5)]
            signals = [cart.signal(Cart.add_item_signal, Line("mug", 1)) for _ in range(5)]
            await asyncio.gather(*adds, *signals)
        await env.sleep(0)
        view = await cart.query(Cart.view)
        assert view.items == {"mug": 31}
        assert view.changes == 31
        assert view.run_number >= 2
        assert len(await runs_of(env.client, "cart-cy")) == view.run_number

        # Concurrent removals cannot take out more than the cart holds.
        results = await asyncio.gather(
            *(cart.execute_update(Cart.remove_item, Line("mug", 10)) for _ in range(5)),
            return_exceptions=True,
        )
        totals = sorted(r for r in results if isinstance(r, int))
        assert totals == [900 * 1, 900 * 11, 900 * 21]  # mugs left after each removal
        assert sum(isinstance(r, WorkflowUpdateFailedError) for r in results) == 2
        assert (await cart.query(Cart.view)).items == {"mug": 1}


@pytest.mark.realtime
def test_script_runs(tmp_path: Path) -> None:
    out = run_example(SCRIPT, tmp_path / "cart.db")
    assert "add 1 x unicorn -> REJECTED by the validator (unknown product 'unicorn')" in out
    assert re.search(r"history (\d+) events before, \1 after", out), out
    assert "continued as new: now run 2" in out
    assert "update: checkout -> order ord-" in out
    assert "result: checked_out after 2 runs; cart workflow COMPLETED" in out
    assert "mailer: to bob" in out
    # Expired 2 s after the last change (the default timeout), a little later when busy.
    assert re.search(r"result: expired after 2\.[0-4] s without a change", out), out
