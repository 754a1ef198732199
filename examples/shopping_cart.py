"""A shopping cart as an *entity workflow*: one long-lived workflow per customer's cart.

Run it::

    pip install -e .
    python examples/shopping_cart.py            # uses ./perdure-cart.db
    python examples/shopping_cart.py --reset    # forget earlier runs and start fresh

What it shows:

* **``perdure.patterns.EntityWorkflow``** does the entity's plumbing: the cart is a subclass
  that declares its state type and its handlers, and no run method. Messages are handled one
  at a time in arrival order, so a change that arrives during checkout waits for it.
* **Update-with-start.** "Add to cart" is one call that creates the cart workflow if the
  customer has none yet, or sends the update to the running one if they do
  (``WorkflowIDConflictPolicy.USE_EXISTING``). No "does the cart exist?" race.
* **Updates vs signals.** Items can be added and removed by *update* (the caller waits and
  gets the new total back; a *validator* refuses unknown products or quantities below 1
  before anything is recorded, so a refused update leaves no trace in history) or by
  *signal* (fire and forget: the sender gets no answer, so the workflow can only ignore a bad
  one).
* **Queries** read the total and the cart without touching history.
* **Checkout** is an update too: it places the order (an activity) and returns the order
  summary to the caller, and the workflow ends.
* **Expiry.** A durable timer, restarted on every change, expires a cart after a stretch of
  inactivity (``idle_timeout``: 30 minutes by default; 2 seconds in this demo); ``on_idle``
  sends the abandoned-cart email.
* **Continue-as-new.** A cart that lives for months would grow an endless history. Every N
  changes (configurable, so you can watch it happen), or when
  ``workflow.info().is_continue_as_new_suggested()`` says so, the workflow hands its state to
  a fresh run of the same workflow id, after letting every running handler finish.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from perdure import ActivityError, ApplicationError, Client, RetryPolicy, Worker, activity, workflow
from perdure.client import (
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowIDConflictPolicy,
    WorkflowUpdateFailedError,
)
from perdure.patterns import EntityWorkflow

TASK_QUEUE = "carts"
STARTED_AT = time.monotonic()


def say(line: str) -> None:
    """Print one narrative line, stamped with the seconds since this process started."""
    print(f"[{time.monotonic() - STARTED_AT:5.1f}s] {line}", flush=True)


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


# ---------------------------------------------------------------------------------------------
# Data. Everything that crosses the workflow boundary (arguments, update and query results,
# the state carried over by continue-as-new) is stored as JSON, so it is plain dataclasses.
# Money is in integer cents: floats and money do not mix.
# ---------------------------------------------------------------------------------------------

# The product catalogue: price in cents. A real shop would look prices up in an activity and
# pass them in; a module-level constant is fine in workflow code because it never changes
# while a workflow runs (changing it between deployments would change replayed decisions).
CATALOG: dict[str, int] = {
    "coffee-beans": 1450,
    "grinder": 8900,
    "mug": 900,
    "filter-papers": 425,
}


@dataclass
class CartLine:
    product: str
    quantity: int = 1


@dataclass
class CartSettings:
    # Abandoned carts expire after this long without a change.
    inactivity_timeout_seconds: float = 30 * 60
    # Continue as new after this many changes in one run, even when perdure does not suggest
    # it yet (it suggests it at 4,096 events), so that histories stay short.
    changes_per_run: int = 500


@dataclass
class OrderLine:
    product: str
    quantity: int
    unit_price_cents: int
    amount_cents: int


@dataclass
class OrderSummary:
    order_id: str
    customer_id: str
    lines: list[OrderLine]
    total_cents: int


@dataclass
class CartState:
    """The cart: the workflow's argument, what one run hands to the next when it continues
    as new, and the workflow's result when the cart is checked out or expires."""

    customer_id: str
    settings: CartSettings = field(default_factory=CartSettings)
    items: dict[str, int] = field(default_factory=dict)
    changes: int = 0  # over the cart's whole life, across runs
    runs: int = 1
    ignored_signals: list[str] = field(default_factory=list)
    status: str = "open"  # "open", "checked_out" or "expired"
    order: OrderSummary | None = None


@dataclass
class CartView:
    customer_id: str
    items: dict[str, int]
    total_cents: int
    changes: int
    run_number: int
    ignored_signals: list[str]


def cart_total(items: dict[str, int]) -> int:
    return sum(CATALOG[product] * quantity for product, quantity in items.items())


def problem_with_add(line: CartLine) -> str | None:
    """Why this line cannot be added, or None. Shared by the update validator and the
    signal handler, so both refuse the same things."""
    if line.product not in CATALOG:
        return f"unknown product {line.product!r}"
    if line.quantity <= 0:
        return f"quantity must be at least 1, got {line.quantity}"
    return None


def problem_with_remove(line: CartLine, items: dict[str, int]) -> str | None:
    problem = problem_with_add(line)
    if problem is not None:
        return problem
    in_cart = items.get(line.product, 0)
    if in_cart == 0:
        return f"no {line.product} in the cart"
    if line.quantity > in_cart:
        return f"only {in_cart} x {line.product} in the cart, cannot remove {line.quantity}"
    return None


# ---------------------------------------------------------------------------------------------
# Activities: the outside world (the order system, the mailer).
# ---------------------------------------------------------------------------------------------


@activity.defn
async def place_order(order: OrderSummary) -> str:
    # The order id was chosen by the workflow (workflow.uuid4() is replay-safe), so a retried
    # attempt can pass it to the order system as an idempotency key: no double orders.
    say(f"  [activity] order system: order {order.order_id} placed, {money(order.total_cents)}")
    return order.order_id


@activity.defn
async def send_abandoned_cart_email(customer_id: str, items: dict[str, int]) -> None:
    listing = ", ".join(f"{q} x {p}" for p, q in items.items()) or "nothing"
    say(f"  [activity] mailer: to {customer_id}: 'you left {listing} in your cart'")


ACTIVITY_TIMEOUT = timedelta(seconds=10)
ACTIVITY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.5), maximum_attempts=3)


# ---------------------------------------------------------------------------------------------
# The workflow: one per cart, id "cart-<customer>". EntityWorkflow provides the run method:
# it hands the messages to the handlers below one at a time, in the order they arrived;
# continues as new with the state when should_continue_as_new() says so, once every running
# handler has finished; and ends the cart after idle_timeout without a message (on_idle) or
# when a handler calls end() (checkout). An ended cart refuses updates and drops signals.
# ---------------------------------------------------------------------------------------------


@workflow.defn
class ShoppingCart(EntityWorkflow[CartState]):
    # @workflow.init: __init__ receives the workflow's argument, so the cart exists before
    # anything else runs. This matters with update-with-start: the first "add" update is
    # handled in the same first step as the workflow's start, and its validator and handler
    # must find the cart ready.
    @workflow.init
    def __init__(self, state: CartState | None = None) -> None:
        super().__init__(state)
        # Each cart has its own settings (they travel in its state, across runs).
        self.idle_timeout = timedelta(seconds=self.state.settings.inactivity_timeout_seconds)
        if workflow.info().continued_run_id is not None:
            self.state.runs += 1
        self.changes_this_run = 0

    def initial_state(self) -> CartState:
        # A cart started without a state (only the id): its customer is in the id.
        return CartState(customer_id=workflow.info().workflow_id.removeprefix("cart-"))

    def should_continue_as_new(self) -> bool:
        return (
            self.changes_this_run >= self.state.settings.changes_per_run
            or super().should_continue_as_new()  # perdure's suggestion
        )

    async def on_idle(self) -> None:
        # No change for idle_timeout: the cart expires (and then completes with its state).
        self.state.status = "expired"
        if self.state.items:
            await workflow.execute_activity(
                send_abandoned_cart_email,
                args=[self.state.customer_id, self.state.items],
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )

    def apply(self, product: str, delta: int) -> int:
        """Change a quantity (the one place state changes) and return the new total."""
        quantity = self.state.items.get(product, 0) + delta
        if quantity > 0:
            self.state.items[product] = quantity
        else:
            self.state.items.pop(product, None)
        self.state.changes += 1
        self.changes_this_run += 1
        return cart_total(self.state.items)

    def check_add(self, line: CartLine) -> None:
        problem = problem_with_add(line)
        if problem is not None:
            # ApplicationError: in a validator any exception refuses the update; in a
            # handler an ApplicationError fails this update only (another exception would
            # fail the workflow task, to be retried as a bug).
            raise ApplicationError(problem, type="InvalidCartChange")

    def check_remove(self, line: CartLine) -> None:
        problem = problem_with_remove(line, self.state.items)
        if problem is not None:
            raise ApplicationError(problem, type="InvalidCartChange")

    def check_checkout(self) -> None:
        if not self.state.items:
            raise ApplicationError("the cart is empty", type="InvalidCheckout")

    # -- updates: the caller waits for the result; validators refuse bad requests -----------

    @workflow.update
    def add_item(self, line: CartLine) -> int:
        """Add to the cart; returns the new total in cents."""
        self.check_add(line)
        return self.apply(line.product, line.quantity)

    @add_item.validator
    def validate_add_item(self, line: CartLine) -> None:
        # A validator runs before the update is accepted. Raising refuses the update: the
        # caller gets WorkflowUpdateFailedError and nothing is written to history. It must
        # not change state (and cannot wait: it is a plain function).
        self.check_add(line)

    @workflow.update
    def remove_item(self, line: CartLine) -> int:
        """Remove from the cart; returns the new total in cents."""
        # Checked again here: the validator ran when the update arrived, and messages ahead
        # of it in line (another removal) may have changed the cart since.
        self.check_remove(line)
        return self.apply(line.product, -line.quantity)

    @remove_item.validator
    def validate_remove_item(self, line: CartLine) -> None:
        self.check_remove(line)

    @workflow.update
    async def checkout(self) -> OrderSummary:
        """Place the order and return its summary; the workflow then ends."""
        self.check_checkout()  # checked again, as in remove_item
        lines = [
            OrderLine(product, quantity, CATALOG[product], CATALOG[product] * quantity)
            for product, quantity in sorted(self.state.items.items())
        ]
        order = OrderSummary(
            order_id=f"ord-{workflow.uuid4().hex[:8]}",
            customer_id=self.state.customer_id,
            lines=lines,
            total_cents=cart_total(self.state.items),
        )
        # While the order is placed, the changes that arrive wait their turn: the cart
        # cannot change under the order. Once it is placed they are refused (the cart ended).
        try:
            await workflow.execute_activity(
                place_order,
                order,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
        except ActivityError as err:
            # Fails this update only (the caller sees why); the cart stays open.
            raise ApplicationError(f"checkout failed: {err.cause}", type="CheckoutFailed") from err
        self.state.order = order
        self.state.status = "checked_out"
        self.end()
        return order

    @checkout.validator
    def validate_checkout(self) -> None:
        self.check_checkout()

    # -- signals: fire and forget. The sender gets no answer, so a bad request can only be
    # ignored (and noted); an update is the better tool when the caller needs to know. -----

    @workflow.signal
    def add_item_signal(self, line: CartLine) -> None:
        problem = problem_with_add(line)
        if problem is not None:
            self.ignore(f"add {line.quantity} x {line.product}: {problem}")
            return
        self.apply(line.product, line.quantity)

    @workflow.signal
    def remove_item_signal(self, line: CartLine) -> None:
        problem = problem_with_remove(line, self.state.items)
        if problem is not None:
            self.ignore(f"remove {line.quantity} x {line.product}: {problem}")
            return
        self.apply(line.product, -line.quantity)

    def ignore(self, what: str) -> None:
        workflow.logger.warning("cart %s ignored signal: %s", self.state.customer_id, what)
        self.state.ignored_signals = [*self.state.ignored_signals, what][-10:]

    # -- queries: read only, never recorded --------------------------------------------------

    @workflow.query
    def total(self) -> int:
        return cart_total(self.state.items)

    @workflow.query
    def view(self) -> CartView:
        return CartView(
            customer_id=self.state.customer_id,
            items=self.state.items,
            total_cents=cart_total(self.state.items),
            changes=self.state.changes,
            run_number=self.state.runs,
            ignored_signals=self.state.ignored_signals,
        )


# ---------------------------------------------------------------------------------------------
# The client side: what a web shop's request handlers would call.
# ---------------------------------------------------------------------------------------------


def cart_id(customer_id: str) -> str:
    return f"cart-{customer_id}"


async def add_to_cart(
    client: Client, customer_id: str, line: CartLine, settings: CartSettings | None = None
) -> int:
    """Add to the customer's cart, creating the cart if they have none open; returns the new
    total. One call, atomic: update-with-start.

    If the validator refuses the very first add, the cart workflow has still been started
    (as with Temporal): it stays empty and expires quietly.
    """
    start = WithStartWorkflowOperation(
        ShoppingCart.run,
        CartState(customer_id, settings or CartSettings()),
        id=cart_id(customer_id),
        task_queue=TASK_QUEUE,
        # If the cart workflow is already running, send the update to it instead of failing.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    total: int = await client.execute_update_with_start_workflow(
        ShoppingCart.add_item, line, start_workflow_operation=start
    )
    return total


def cart_handle(client: Client, customer_id: str) -> WorkflowHandle[CartState]:
    # No run id: the handle always reaches the cart's latest run, which matters once the
    # cart has continued as new.
    handle: WorkflowHandle[CartState] = client.get_workflow_handle_for(
        ShoppingCart.run, cart_id(customer_id)
    )
    return handle


# ---------------------------------------------------------------------------------------------
# The demo.
# ---------------------------------------------------------------------------------------------


async def wait_for_view(
    handle: WorkflowHandle[CartState], done: str, *, changes: int = 0, run_number: int = 0
) -> CartView:
    """Signals are asynchronous: the sender does not wait. Poll the cart (a query) until it
    has applied them."""
    deadline = time.monotonic() + 10
    while True:
        view: CartView = await handle.query(ShoppingCart.view)
        if view.changes >= changes and view.run_number >= run_number:
            return view
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cart did not reach: {done}")
        await asyncio.sleep(0.05)


async def created(handle: WorkflowHandle[CartState]) -> str:
    view: CartView = await handle.query(ShoppingCart.view)
    if view.changes == 1:
        return "cart created"
    # An earlier, interrupted run of this demo left the cart open: the update went to it.
    return f"added to the cart left open earlier, run {view.run_number}"


async def alice(client: Client, settings: CartSettings) -> None:
    print("\n== alice: updates, a refused update, signals, continue-as-new, checkout ==")
    total = await add_to_cart(client, "alice", CartLine("mug", 2), settings)
    handle = cart_handle(client, "alice")
    first = await handle.describe()
    say(f"update-with-start: add 2 x mug -> total {money(total)} ({await created(handle)})")
    total = await handle.execute_update(ShoppingCart.add_item, CartLine("grinder", 1))
    say(f"update: add 1 x grinder -> total {money(total)}")

    for bad in (CartLine("unicorn", 1), CartLine("mug", 0)):
        before = (await handle.describe()).history_length
        try:
            await handle.execute_update(ShoppingCart.add_item, bad)
        except WorkflowUpdateFailedError as err:
            after = (await handle.describe()).history_length
            say(
                f"update: add {bad.quantity} x {bad.product} -> REJECTED by the validator "
                f"({err.cause}); history {before} events before, {after} after"
            )

    base = (await handle.query(ShoppingCart.view)).changes
    await handle.signal(ShoppingCart.add_item_signal, CartLine("filter-papers", 3))
    await handle.signal(ShoppingCart.add_item_signal, CartLine("unicorn", 1))
    await handle.signal(ShoppingCart.remove_item_signal, CartLine("mug", 1))
    say("signals sent (fire and forget): add 3 x filter-papers, add 1 x unicorn, remove 1 x mug")
    view = await wait_for_view(handle, "signals applied", changes=base + 2)
    say(f"query: total {money(view.total_cents)}; ignored signals: {view.ignored_signals}")

    view = await wait_for_view(handle, "continued as new", run_number=2)
    latest = await handle.describe()
    say(
        f"after {view.changes} changes the cart continued as new: now run {view.run_number} "
        f"(run id {first.run_id[:8]}... -> {latest.run_id[:8]}...), carrying {view.items}"
    )

    summary: OrderSummary = await handle.execute_update(ShoppingCart.checkout)
    lines = ", ".join(f"{line.quantity} x {line.product}" for line in summary.lines)
    say(f"update: checkout -> order {summary.order_id}: {lines}, {money(summary.total_cents)}")
    outcome = await handle.result()  # follows the runs to the last one
    status = (await handle.describe()).status.name
    say(f"result: {outcome.status} after {outcome.runs} runs; cart workflow {status}")


async def bob(client: Client, settings: CartSettings) -> None:
    timeout = settings.inactivity_timeout_seconds
    print(f"\n== bob: an abandoned cart expires after {timeout:g} s without a change ==")
    total = await add_to_cart(client, "bob", CartLine("grinder", 1), settings)
    created_or_not = await created(cart_handle(client, "bob"))
    say(f"update-with-start: add 1 x grinder -> total {money(total)} ({created_or_not})")
    await asyncio.sleep(timeout * 0.6)
    total = await add_to_cart(client, "bob", CartLine("coffee-beans", 2), settings)
    changed_at = time.monotonic()
    say(f"update-with-start: add 2 x coffee-beans -> total {money(total)} (expiry timer restarts)")
    outcome = await cart_handle(client, "bob").result()
    idle = time.monotonic() - changed_at
    left = money(cart_total(outcome.items))
    say(f"result: {outcome.status} after {idle:.1f} s without a change, {left} left in it")


async def main(db: Path, settings: CartSettings) -> int:
    print(f"perdure shopping cart demo, database {db}")
    print(
        f"(carts expire after {settings.inactivity_timeout_seconds:g} s of inactivity and "
        f"continue as new every {settings.changes_per_run} changes)"
    )
    client = await Client.connect(f"sqlite:///{db}")
    try:
        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[ShoppingCart],
            activities=[place_order, send_abandoned_cart_email],
        ):
            await alice(client, settings)
            await bob(client, settings)
    finally:
        await client.close()
    print("\nDone.")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("perdure-cart.db"),
        help="SQLite file holding the workflows (default: %(default)s)",
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the database first and start from scratch"
    )
    parser.add_argument(
        "--inactivity-timeout",
        type=float,
        default=2.0,
        help="seconds without a change before a cart expires (default: %(default)s)",
    )
    parser.add_argument(
        "--changes-per-run",
        type=int,
        default=4,
        help="continue as new after this many changes in one run (default: %(default)s)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    cart_settings = CartSettings(args.inactivity_timeout, args.changes_per_run)
    sys.exit(asyncio.run(main(args.db, cart_settings)))
