"""Inventory reservations: one entity workflow per stock item, holding stock for orders.

Run it::

    pip install -e .
    python examples/inventory.py            # uses ./perdure-inventory.db
    python examples/inventory.py --reset    # forget earlier runs and start fresh

What it shows:

* **An item is an entity** (id ``item-<sku>``): an ``EntityWorkflow[Item]`` from
  ``perdure.patterns``. Its handlers run one at a time in the order requests arrive, and it
  continues as new with its state when its history grows long, so it can live for years.
* **Reserve, release, commit** are *updates*: a checkout reserves stock for an order, then
  commits it once paid (the stock leaves the shelf) or releases it. Their *validators* refuse
  what cannot be done, reserving more than is available above all, before anything is
  recorded: the caller gets the reason and the history does not change.
* **Reservations expire.** A reservation not committed within the item's reservation timeout
  (15 minutes by default, 2 seconds in this demo) is dropped and its stock is available
  again. The deadline is in the state: ``next_deadline()`` tells the entity when the next
  reservation expires and ``on_deadline()`` drops the expired ones, in line with the
  requests, so an expiry and a commit never interleave.
* **Update-with-start.** The first delivery of an item creates its workflow; later ones go to
  the running one.
* **Queries** read what is on hand, reserved and available without touching history.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from perdure import ApplicationError, Client, Worker, workflow
from perdure.client import (
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowIDConflictPolicy,
    WorkflowUpdateFailedError,
)
from perdure.patterns import EntityWorkflow

TASK_QUEUE = "inventory"
STARTED_AT = time.monotonic()


def say(line: str) -> None:
    """Print one narrative line, stamped with the seconds since this process started."""
    print(f"[{time.monotonic() - STARTED_AT:5.1f}s] {line}", flush=True)


# ---------------------------------------------------------------------------------------------
# Data: plain dataclasses (stored as JSON).
# ---------------------------------------------------------------------------------------------


@dataclass
class Reservation:
    reservation_id: str  # chosen by the caller (an order id): a retried request is recognised
    quantity: int
    expires_at: datetime


@dataclass
class Item:
    """One item's state: the workflow's argument, and what continue-as-new carries on."""

    sku: str
    on_hand: int = 0  # on the shelf, reserved or not
    reservations: dict[str, Reservation] = field(default_factory=dict)
    sold: int = 0
    expired: list[str] = field(default_factory=list)  # the latest expired reservation ids
    reservation_timeout_seconds: float = 15 * 60

    @property
    def reserved(self) -> int:
        return sum(r.quantity for r in self.reservations.values())

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass
class ReserveRequest:
    reservation_id: str
    quantity: int


@dataclass
class ItemView:
    sku: str
    on_hand: int
    reserved: int
    available: int
    reservations: list[Reservation]
    sold: int
    expired: list[str]


def item_workflow_id(sku: str) -> str:
    return f"item-{sku}"


# ---------------------------------------------------------------------------------------------
# The item workflow.
# ---------------------------------------------------------------------------------------------


def refuse(problem: str) -> ApplicationError:
    # In a validator any exception refuses the update (no trace in history); in a handler an
    # ApplicationError fails this update only.
    return ApplicationError(problem, type="Refused")


@workflow.defn
class StockItem(EntityWorkflow[Item]):
    # -- checks, shared by the validators and the handlers. A validator runs when its update
    # arrives; a handler runs after every request ahead of it in line, so it checks again.

    def check_reserve(self, request: ReserveRequest) -> None:
        item = self.state
        if request.quantity <= 0:
            raise refuse(f"quantity must be at least 1, got {request.quantity}")
        if request.reservation_id in item.reservations:
            raise refuse(f"reservation {request.reservation_id!r} already exists")
        if request.quantity > item.available:
            raise refuse(
                f"only {item.available} x {item.sku} available, cannot reserve {request.quantity}"
            )

    def check_known(self, reservation_id: str) -> Reservation:
        reservation = self.state.reservations.get(reservation_id)
        if reservation is None:
            expired = " (it expired)" if reservation_id in self.state.expired else ""
            raise refuse(f"no reservation {reservation_id!r}{expired}")
        return reservation

    # -- updates ---------------------------------------------------------------------------

    @workflow.update
    def reserve(self, request: ReserveRequest) -> Reservation:
        """Hold stock for an order until it is committed, released, or expires."""
        self.check_reserve(request)
        timeout = timedelta(seconds=self.state.reservation_timeout_seconds)
        reservation = Reservation(
            request.reservation_id, request.quantity, workflow.now() + timeout
        )
        self.state.reservations[request.reservation_id] = reservation
        return reservation

    @reserve.validator
    def validate_reserve(self, request: ReserveRequest) -> None:
        self.check_reserve(request)

    @workflow.update
    def commit(self, reservation_id: str) -> int:
        """The order is paid: its stock leaves the shelf. Returns what is left on hand."""
        reservation = self.check_known(reservation_id)
        del self.state.reservations[reservation_id]
        self.state.on_hand -= reservation.quantity
        self.state.sold += reservation.quantity
        return self.state.on_hand

    @commit.validator
    def validate_commit(self, reservation_id: str) -> None:
        self.check_known(reservation_id)

    @workflow.update
    def release(self, reservation_id: str) -> int:
        """The order was abandoned: its stock is available again. Returns what is available."""
        self.check_known(reservation_id)
        del self.state.reservations[reservation_id]
        return self.state.available

    @release.validator
    def validate_release(self, reservation_id: str) -> None:
        self.check_known(reservation_id)

    @workflow.update
    def restock(self, quantity: int) -> int:
        """A delivery arrived. Returns what is available."""
        self.check_restock(quantity)
        self.state.on_hand += quantity
        return self.state.available

    @restock.validator
    def check_restock(self, quantity: int) -> None:
        if quantity <= 0:
            raise refuse(f"a delivery brings at least 1, got {quantity}")

    # -- expiry: the next deadline comes from the state, so it survives continue-as-new ----

    def next_deadline(self) -> datetime | None:
        return min((r.expires_at for r in self.state.reservations.values()), default=None)

    async def on_deadline(self) -> None:
        now = workflow.now()
        for reservation in list(self.state.reservations.values()):
            if reservation.expires_at <= now:
                del self.state.reservations[reservation.reservation_id]
                self.state.expired = [*self.state.expired, reservation.reservation_id][-20:]
                workflow.logger.info(
                    "%s: reservation %s expired", self.state.sku, reservation.reservation_id
                )

    # -- queries ---------------------------------------------------------------------------

    @workflow.query
    def view(self) -> ItemView:
        item = self.state
        return ItemView(
            sku=item.sku,
            on_hand=item.on_hand,
            reserved=item.reserved,
            available=item.available,
            reservations=sorted(item.reservations.values(), key=lambda r: r.reservation_id),
            sold=item.sold,
            expired=item.expired,
        )


# ---------------------------------------------------------------------------------------------
# The client side: what a shop's checkout and a warehouse's delivery feed would call.
# ---------------------------------------------------------------------------------------------


async def receive_delivery(
    client: Client, sku: str, quantity: int, *, reservation_timeout_seconds: float = 15 * 60
) -> int:
    """Put a delivery on the shelf, creating the item's workflow on its first delivery
    (update-with-start); returns what is available."""
    start = WithStartWorkflowOperation(
        StockItem.run,
        Item(sku, reservation_timeout_seconds=reservation_timeout_seconds),
        id=item_workflow_id(sku),
        task_queue=TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    available: int = await client.execute_update_with_start_workflow(
        StockItem.restock, quantity, start_workflow_operation=start
    )
    return available


def item_handle(client: Client, sku: str) -> WorkflowHandle[Item]:
    # No run id: the handle reaches the item's latest run, after it continued as new too.
    handle: WorkflowHandle[Item] = client.get_workflow_handle_for(
        StockItem.run, item_workflow_id(sku)
    )
    return handle


# ---------------------------------------------------------------------------------------------
# The demo.
# ---------------------------------------------------------------------------------------------


async def show(handle: WorkflowHandle[Item]) -> str:
    view: ItemView = await handle.query(StockItem.view)
    held = ", ".join(f"{r.reservation_id}: {r.quantity}" for r in view.reservations) or "none"
    return (
        f"on hand {view.on_hand}, reserved {view.reserved} ({held}), "
        f"available {view.available}, sold {view.sold}"
    )


async def attempt(what: str, request: Awaitable[object]) -> None:
    try:
        result = await request
    except WorkflowUpdateFailedError as err:
        say(f"{what} -> REJECTED: {err.cause}")
    else:
        shown = result.quantity if isinstance(result, Reservation) else result
        say(f"{what} -> ok ({shown})")


async def demo(client: Client, sku: str, timeout: float) -> None:
    print(f"\n== {sku}: reservations, refusals, a commit, an expiry (timeout {timeout:g} s) ==")
    available = await receive_delivery(client, sku, 10, reservation_timeout_seconds=timeout)
    say(f"delivery of 10 x {sku} (update-with-start) -> available {available}")
    item = item_handle(client, sku)

    def order(name: str) -> str:
        return f"order-{name}"  # order ids come from the shop

    await attempt(
        f"reserve 4 for {order('A')}",
        item.execute_update(StockItem.reserve, ReserveRequest(order("A"), 4)),
    )
    await attempt(
        f"reserve 5 for {order('B')}",
        item.execute_update(StockItem.reserve, ReserveRequest(order("B"), 5)),
    )
    before = (await item.describe()).history_length
    await attempt(
        f"reserve 3 for {order('C')}",
        item.execute_update(StockItem.reserve, ReserveRequest(order("C"), 3)),
    )
    after = (await item.describe()).history_length
    say(f"history {before} events before the refusal, {after} after")
    say(f"query: {await show(item)}")

    await attempt(f"commit {order('A')}", item.execute_update(StockItem.commit, order("A")))
    say(f"query: {await show(item)}")

    say(f"{order('B')} is never paid for: waiting for its reservation to expire ...")
    deadline = time.monotonic() + timeout + 10
    while order("B") not in (await item.query(StockItem.view)).expired:
        if time.monotonic() > deadline:
            raise RuntimeError("the reservation did not expire")
        await asyncio.sleep(0.05)
    say(f"{order('B')} expired; query: {await show(item)}")
    await attempt(f"commit {order('B')}", item.execute_update(StockItem.commit, order("B")))
    await attempt(
        f"reserve 3 for {order('C')}",
        item.execute_update(StockItem.reserve, ReserveRequest(order("C"), 3)),
    )
    await attempt(f"release {order('C')}", item.execute_update(StockItem.release, order("C")))
    say(f"query: {await show(item)}")


async def main(db: Path, timeout: float) -> int:
    print(f"perdure inventory demo, database {db}")
    client = await Client.connect(f"sqlite:///{db}")
    try:
        async with Worker(client, task_queue=TASK_QUEUE, workflows=[StockItem]):
            # A fresh item per run of the demo, so that it can run again on the same database.
            session = uuid.uuid4().hex[:6]
            await demo(client, f"mug-{session}", timeout)
    finally:
        await client.close()
    print("\nDone.")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("perdure-inventory.db"),
        help="SQLite file holding the workflows (default: %(default)s)",
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the database first and start from scratch"
    )
    parser.add_argument(
        "--reservation-timeout",
        type=float,
        default=2.0,
        help="seconds before an uncommitted reservation expires (default: %(default)s)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    sys.exit(asyncio.run(main(args.db, args.reservation_timeout)))
