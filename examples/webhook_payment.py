"""Webhooks: a payment activity that a provider completes later by calling us back.

Run it::

    pip install -e .
    python examples/webhook_payment.py            # uses ./perdure-webhook.db
    python examples/webhook_payment.py --reset    # forget earlier runs and start fresh

A payment provider does not answer a charge at once: it takes the request, works on it, and
calls our webhook when it knows. The activity that asks for the payment therefore does not
return the result itself. With ``perdure.patterns.hand_off`` it sends the provider its *task
token* (the name of this attempt, as text) and its *idempotency key*, and ends without
completing. When the provider calls back, the webhook handler completes the activity with
``client.get_async_activity_handle(task_token=...)``: ``complete(receipt)`` or
``fail(error)``. Meanwhile no worker holds anything; the activity's ``start_to_close_timeout``
bounds how long the answer may take.

Three orders:

* ORD-1 is paid: the provider calls back, the webhook completes the activity;
* ORD-2's card is declined: the webhook fails the activity with a non-retryable error;
* ORD-3's callback is lost on the way. The attempt times out and is retried, handing the
  provider a new token with the same idempotency key. The provider knows the key, so it does
  not charge again: it answers the new token with the charge it already made.

The provider is simulated in this process; in real life ``FakeProvider.charge`` is an HTTP
request to it, and ``webhook`` is the handler of your ``POST /payments/webhook`` route.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from perdure import ActivityError, ApplicationError, Client, RetryPolicy, Worker, activity, workflow
from perdure.client import AsyncActivityNotFoundError, WorkflowIDConflictPolicy
from perdure.patterns import HandOff, hand_off

TASK_QUEUE = "payments"
STARTED_AT = time.monotonic()


def say(line: str) -> None:
    """Print one narrative line, stamped with the seconds since this process started."""
    print(f"[{time.monotonic() - STARTED_AT:5.1f}s] {line}", flush=True)


# ---------------------------------------------------------------------------------------------
# Data (stored as JSON: plain dataclasses).
# ---------------------------------------------------------------------------------------------


@dataclass
class Order:
    order_id: str
    amount: int  # cents
    card: str
    answer_within: float = 3600.0  # seconds the provider has to call back, per attempt


@dataclass
class Receipt:
    charge_id: str
    amount: int


@dataclass
class PaymentResult:
    order_id: str
    status: str  # "paid" or "declined"
    detail: str  # the charge id, or why it was declined


# ---------------------------------------------------------------------------------------------
# The provider: it takes charge requests and calls back later.
# ---------------------------------------------------------------------------------------------


@dataclass
class Charge:
    charge_id: str
    order_id: str
    amount: int
    card: str
    callback_token: str  # the newest token it was given for this charge
    outcome: dict[str, object] | None = None  # once processed


class FakeProvider:
    """Stands for a payment provider: it charges each idempotency key at most once, and
    reports to the webhook it was given (here, a function)."""

    def __init__(
        self, client: Client, *, delay: float = 0.5, lose_first_callback_of: Iterable[str] = ()
    ) -> None:
        self.client = client
        self.delay = delay  # real seconds it takes to process a charge
        self.lose_first_callback_of = set(lose_first_callback_of)
        self.charges: dict[str, Charge] = {}  # by idempotency key
        self._tasks: set[asyncio.Task[None]] = set()

    async def charge(self, order: Order, h: HandOff) -> None:
        """The charge request (an HTTP POST to the provider's API, in real life)."""
        known = self.charges.get(h.idempotency_key)
        if known is not None:
            say(f"  [provider] {order.order_id}: key seen before; not charging again")
            known.callback_token = h.task_token.decode()
            if known.outcome is not None:
                self._spawn(self.call_back(known))
            return
        charge = Charge(
            f"ch_{len(self.charges) + 1:03d}",
            order.order_id,
            order.amount,
            order.card,
            h.task_token.decode(),
        )
        self.charges[h.idempotency_key] = charge
        say(f"  [provider] {order.order_id}: charge request accepted (attempt {h.attempt})")
        self._spawn(self.process(charge))

    async def process(self, charge: Charge) -> None:
        await asyncio.sleep(self.delay)
        if charge.card.endswith("0002"):
            charge.outcome = {"status": "declined", "reason": "card declined"}
        else:
            charge.outcome = {"status": "succeeded", "charge_id": charge.charge_id}
        if charge.order_id in self.lose_first_callback_of:
            self.lose_first_callback_of.discard(charge.order_id)
            say(f"  [provider] {charge.order_id}: the callback is lost on the network")
            return
        await self.call_back(charge)

    async def call_back(self, charge: Charge) -> None:
        body = {
            "token": charge.callback_token,
            "order_id": charge.order_id,
            "amount": charge.amount,
            **(charge.outcome or {}),
        }
        await webhook(self.client, json.dumps(body).encode())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# ---------------------------------------------------------------------------------------------
# Our side: the webhook handler, the activity and the workflow.
# ---------------------------------------------------------------------------------------------


async def webhook(client: Client, body: bytes) -> None:
    """What the ``POST /payments/webhook`` route runs when the provider calls back."""
    event = json.loads(body)
    callback = client.get_async_activity_handle(task_token=event["token"].encode())
    try:
        if event["status"] == "succeeded":
            await callback.complete(Receipt(event["charge_id"], event["amount"]))
        else:
            await callback.fail(
                ApplicationError(event["reason"], type="CardDeclined", non_retryable=True)
            )
    except AsyncActivityNotFoundError:
        # That attempt is over (it timed out and was retried, or was answered already): its
        # token is dead. The provider answers the retry's token too, so nothing is lost.
        say(f"  [webhook] {event['order_id']}: callback for an attempt that is over, ignored")
        return
    outcome = "completed" if event["status"] == "succeeded" else "failed"
    say(f"  [webhook] {event['order_id']}: payment {event['status']}, activity {outcome}")


class Payments:
    """The activity, as a method: it shares the provider's client (a connection pool, say)."""

    def __init__(self, provider: FakeProvider) -> None:
        self.provider = provider

    @activity.defn
    async def request_payment(self, order: Order) -> Receipt:
        # Send the token and the idempotency key, and end without completing: the webhook
        # completes this activity when the provider calls back.
        await hand_off(lambda h: self.provider.charge(order, h))


@workflow.defn
class PaymentWorkflow:
    @workflow.run
    async def run(self, order: Order) -> PaymentResult:
        try:
            receipt = await workflow.execute_activity_method(
                Payments.request_payment,
                order,
                start_to_close_timeout=timedelta(seconds=order.answer_within),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=0.5)),
            )
        except ActivityError as err:
            return PaymentResult(order.order_id, "declined", str(err.cause))
        return PaymentResult(order.order_id, "paid", receipt.charge_id)


# ---------------------------------------------------------------------------------------------
# The demo.
# ---------------------------------------------------------------------------------------------


ORDERS = [
    Order("ORD-1", 4_200, "4242 4242 4242 4242"),
    Order("ORD-2", 1_500, "4000 0000 0000 0002"),
    Order("ORD-3", 9_900, "5555 5555 5555 4444"),
]


async def demo(client: Client, provider: FakeProvider, answer_within: float) -> list[PaymentResult]:
    handles = [
        await client.start_workflow(
            PaymentWorkflow.run,
            Order(o.order_id, o.amount, o.card, answer_within),
            id=f"payment-{o.order_id}",
            task_queue=TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        for o in ORDERS
    ]
    say("started ORD-1, ORD-2 and ORD-3")
    results: list[PaymentResult] = [await h.result() for h in handles]
    return results


async def main(db: Path, answer_within: float) -> int:
    print(f"perdure webhook payment demo, database {db}")
    print(f"(the provider has {answer_within:g} s to call back, per attempt)\n")
    client = await Client.connect(f"sqlite:///{db}")
    provider = FakeProvider(client, lose_first_callback_of={"ORD-3"})
    try:
        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[PaymentWorkflow],
            activities=[Payments(provider).request_payment],
        ):
            results = await demo(client, provider, answer_within)
    finally:
        await provider.close()
        await client.close()
    print("\nResults:")
    for r in results:
        print(f"  {r.order_id}: {r.status.upper()} ({r.detail})")
    print(f"The provider made {len(provider.charges)} charge(s) in this run.")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("perdure-webhook.db"),
        help="SQLite file holding the workflows (default: %(default)s)",
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the database first and start from scratch"
    )
    parser.add_argument(
        "--answer-within",
        type=float,
        default=2.0,
        help="seconds the provider has to call back, per attempt (default 2)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    sys.exit(asyncio.run(main(args.db, args.answer_within)))
