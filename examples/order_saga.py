"""An order saga that survives Ctrl-C, ``kill -9`` and restarts.

Run it::

    pip install -e .
    python examples/order_saga.py            # uses ./perdure-demo.db
    python examples/order_saga.py --reset    # forget earlier runs and start fresh

Three orders go through the same workflow: reserve inventory, charge payment, fulfil the
order. Each step is an *activity* (the code that touches the outside world), and before each
step the workflow registers the *compensation* that undoes it with a ``perdure.patterns.Saga``.
When a step fails for good, the registered compensations run in reverse order (the saga
pattern):

* order-1001 succeeds;
* order-1002's card is declined (a non-retryable error), so its inventory is released;
* order-1003's warehouse is down: fulfilment is retried, then given up, so the payment is
  refunded and the inventory released.

Interrupt it half way (Ctrl-C, or ``kill -9``) and run it again: each workflow resumes where
it stood. Steps that completed are not run again; their results come from the workflow's
history in the database. Once an order has finished, later runs just show its stored result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from perdure import (
    ActivityError,
    ApplicationError,
    CancelledError,
    Client,
    RetryPolicy,
    Worker,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    activity,
    workflow,
)
from perdure.client import WorkflowNotFoundError
from perdure.common import WorkflowIDConflictPolicy
from perdure.patterns import Saga

TASK_QUEUE = "orders"
STARTED_AT = time.monotonic()


def say(line: str) -> None:
    """Print one narrative line, stamped with the seconds since this process started."""
    print(f"[{time.monotonic() - STARTED_AT:5.1f}s] {line}", flush=True)


# ---------------------------------------------------------------------------------------------
# Data. Workflow and activity arguments and results are stored in the database as JSON, so
# they are plain dataclasses.
# ---------------------------------------------------------------------------------------------


@dataclass
class Order:
    order_id: str
    item: str
    quantity: int
    amount: float
    card: str  # "4242" is accepted by our fake payment gateway, "0000" is declined
    warehouse_online: bool = True


@dataclass
class Receipt:
    order_id: str
    reservation_id: str
    charge_id: str
    tracking_number: str


ORDERS = [
    Order("1001", "espresso machine", 1, 249.00, card="4242"),
    Order("1002", "coffee grinder", 2, 178.50, card="0000"),
    Order("1003", "milk frother", 3, 89.97, card="4242", warehouse_online=False),
]


# Retry policies and timeouts, used by the workflow below when it calls each activity.
STEP_ATTEMPTS = 3
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.5), maximum_attempts=STEP_ATTEMPTS)
# Compensations must eventually succeed: retry them without limit (0 = unlimited).
UNDO_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.5), maximum_attempts=0)
# How long one attempt may take before it counts as lost: also how long a step that was
# running when its process was killed waits before it is retried.
ATTEMPT_TIMEOUT = timedelta(seconds=3)


# ---------------------------------------------------------------------------------------------
# Activities. They may do anything (network, disk, randomness); perdure records each one's
# result in the workflow's history, so a completed activity never runs again, even after a
# crash. An activity can run more than once (a retry, or a crash after it did its work but
# before its result was recorded), so real activities must be idempotent: here each one would
# pass the order id as the idempotency key of the external call.
# ---------------------------------------------------------------------------------------------

STEP_LABELS = {
    "reserve_inventory": "reserve inventory",
    "charge_payment": "charge payment",
    "fulfil_order": "fulfil order",
    "release_inventory": "undo: release inventory",
    "refund_payment": "undo: refund payment",
    "cancel_fulfilment": "undo: cancel fulfilment",
}


async def simulate_work(outcome: str) -> None:
    """Take a little real time, so there is something to interrupt, and then narrate."""
    await asyncio.sleep(random.uniform(0.3, 0.8))
    info = activity.info()
    step = STEP_LABELS[info.activity_type]
    say(f"{info.workflow_id:<11} {step:<24} attempt {info.attempt}  {outcome}")


@activity.defn
async def reserve_inventory(order: Order) -> str:
    await simulate_work(f"ok: {order.quantity} x {order.item}")
    return f"rsv-{order.order_id}"


@activity.defn
async def charge_payment(order: Order) -> str:
    if order.card == "0000":
        await simulate_work("FAILED: card declined (not retryable)")
        # non_retryable: retrying will not make the bank change its mind.
        raise ApplicationError("card declined", type="CardDeclined", non_retryable=True)
    await simulate_work(f"ok: charged ${order.amount:.2f}")
    return f"ch-{order.order_id}"


@activity.defn
async def fulfil_order(order: Order) -> str:
    if not order.warehouse_online:
        last = activity.info().attempt >= STEP_ATTEMPTS
        await simulate_work(
            "FAILED: warehouse unreachable " + ("(giving up)" if last else "(will retry)")
        )
        # A plain exception is retryable: perdure retries it as the retry policy says.
        raise ConnectionError("warehouse unreachable")
    await simulate_work("ok: shipped")
    return f"trk-{order.order_id}"


# Compensations are activities too: recorded, retried until they succeed, never run twice
# once they completed. Each must be safe to run even if the step it undoes never happened
# (the compensation is registered *before* its step, and the step may fail half way).


@activity.defn
async def release_inventory(order: Order) -> None:
    await simulate_work("ok: inventory released")


@activity.defn
async def refund_payment(order: Order) -> None:
    if activity.info().attempt == 1 and not order.warehouse_online:
        # Show that compensations retry too: the gateway times out once.
        await simulate_work("FAILED: payment gateway timeout (will retry)")
        raise TimeoutError("payment gateway timeout")
    await simulate_work("ok: payment refunded (if it was taken)")


@activity.defn
async def cancel_fulfilment(order: Order) -> None:
    await simulate_work("ok: fulfilment cancelled (if it had started)")


# ---------------------------------------------------------------------------------------------
# The workflow: deterministic orchestration. perdure records every decision it makes; after a
# crash it replays this code against the recorded history to rebuild its state (the saga's
# compensations included) and carries on from the first step that has no recorded result.
# ---------------------------------------------------------------------------------------------


@dataclass
class SagaFailure:
    """What a failed order's ``ApplicationError`` carries as its detail."""

    failed_step: str
    reason: str
    compensations: list[str] = field(default_factory=list)


@workflow.defn
class OrderWorkflow:
    @workflow.run
    async def run(self, order: Order) -> Receipt:
        # The undo stack. Compensations are activities too, retried without limit.
        saga = Saga(start_to_close_timeout=ATTEMPT_TIMEOUT, retry_policy=UNDO_RETRY)
        step = ""
        try:
            # If a step fails for good, leaving this block runs the compensations registered
            # so far, last first, then re-raises the step's error.
            async with saga:
                step = "reserve_inventory"
                saga.add_compensation(release_inventory, order)  # register BEFORE the step
                reservation_id = await self.step(reserve_inventory, order)

                step = "charge_payment"
                saga.add_compensation(refund_payment, order)
                charge_id = await self.step(charge_payment, order)

                step = "fulfil_order"
                saga.add_compensation(cancel_fulfilment, order)
                tracking_number = await self.step(fulfil_order, order)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                raise  # the workflow was cancelled: compensated, it ends CANCELED
            # err.cause is the activity's own error (the last attempt's, after retries).
            reason = str(err.cause or err)
            # Raising ApplicationError fails the workflow (a plain exception would only fail
            # this workflow task, to be retried). The client finds the detail in err.cause.
            raise ApplicationError(
                f"order {order.order_id} failed at {step}: {reason}",
                SagaFailure(step, reason, list(saga.compensated)),
                type="OrderFailed",
            ) from err
        return Receipt(order.order_id, reservation_id, charge_id, tracking_number)

    @staticmethod
    async def step(fn: Callable[[Order], Awaitable[str]], order: Order) -> str:
        result: str = await workflow.execute_activity(
            fn, order, start_to_close_timeout=ATTEMPT_TIMEOUT, retry_policy=STEP_RETRY
        )
        return result


# ---------------------------------------------------------------------------------------------
# The driver: start (or find) one workflow per order, wait for all of them, print a summary.
# ---------------------------------------------------------------------------------------------


async def progress(handle: WorkflowHandle[Receipt]) -> tuple[list[str], list[str]]:
    """(steps whose results are recorded, steps scheduled but without a result yet), read
    from the workflow's history: the record that makes resuming possible."""
    history = await handle.fetch_history()
    scheduled = {}
    closed = set()
    for event in history.events:
        if event.event_type == "ActivityTaskScheduled":
            scheduled[event.event_id] = STEP_LABELS[event.attributes["activity_type"]]
        elif event.event_type in (
            "ActivityTaskCompleted",
            "ActivityTaskFailed",
            "ActivityTaskTimedOut",
            "ActivityTaskCanceled",
        ):
            closed.add(event.attributes["scheduled_event_id"])
    done = [
        scheduled[e.attributes["scheduled_event_id"]]
        for e in history.events
        if e.event_type == "ActivityTaskCompleted"
    ]
    pending = [step for event_id, step in scheduled.items() if event_id not in closed]
    return done, pending


async def start_or_resume(client: Client, order: Order) -> tuple[WorkflowHandle[Receipt], bool]:
    """Return a handle to the order's workflow, starting it only if it never ran, and
    whether it is resuming a run that an earlier process started.

    The workflow id is derived from the order, so a second run of this program finds the
    workflow the first run started instead of creating a duplicate.
    """
    workflow_id = f"order-{order.order_id}"
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except WorkflowNotFoundError:
        described = None
    if described is not None and described.status != WorkflowExecutionStatus.RUNNING:
        say(
            f"{workflow_id:<11} finished in an earlier run ({described.status.name}): "
            "showing its stored result"
        )
        return client.get_workflow_handle_for(OrderWorkflow.run, workflow_id), False
    # USE_EXISTING: if the workflow is already running, return a handle to it, don't fail.
    handle = await client.start_workflow(
        OrderWorkflow.run,
        order,
        id=workflow_id,
        task_queue=TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    if described is None:
        say(f"{workflow_id:<11} started")
        return handle, False
    done, pending = await progress(handle)
    say(
        f"resuming {workflow_id} (started in an earlier run; done: "
        f"{', '.join(done) or 'nothing yet'}; in progress: {', '.join(pending) or '-'})"
    )
    return handle, True


async def outcome(handle: WorkflowHandle[Receipt]) -> tuple[str, str, str]:
    """(status, result, compensations run) of a finished workflow, for the summary."""
    try:
        receipt: Receipt = await handle.result()
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "OrderFailed":
            # Details come back from the database as plain JSON values.
            detail = cause.details[0]
            undone = ", ".join(
                STEP_LABELS[c].removeprefix("undo: ") for c in detail["compensations"]
            )
            step = STEP_LABELS[detail["failed_step"]]
            return "FAILED", f"{step}: {detail['reason']}", undone
        return "FAILED", str(cause), "?"
    return "COMPLETED", f"shipped, tracking {receipt.tracking_number}", "-"


def print_summary(rows: list[tuple[str, str, str, str]]) -> None:
    headers = ("order", "status", "result", "compensations run")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(4)]
    print()
    for i, row in enumerate([headers, *rows]):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


async def main(db: Path) -> int:
    print(f"perdure order saga demo, database {db}\n")
    # Ctrl-C (SIGINT) and SIGTERM set this event instead of killing the program at once.
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted.set)

    client = await Client.connect(f"sqlite:///{db}")
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[OrderWorkflow],
        activities=[
            reserve_inventory,
            charge_payment,
            fulfil_order,
            release_inventory,
            refund_payment,
            cancel_fulfilment,
        ],
        # On Ctrl-C, let the activities already running finish (they take < 1 s) so their
        # results are recorded, rather than cancelling them.
        graceful_shutdown_timeout=timedelta(seconds=2),
    )
    try:
        # The worker runs workflows and activities in the background until the block ends.
        async with worker:
            started = [await start_or_resume(client, order) for order in ORDERS]
            if any(resumed for _, resumed in started):
                print(
                    "  (a step that was running when its process died is retried once its "
                    f"{ATTEMPT_TIMEOUT.total_seconds():g} s attempt timeout has passed)"
                )
            handles = [handle for handle, _ in started]
            results = asyncio.gather(*(outcome(h) for h in handles))
            stop = asyncio.create_task(interrupted.wait())
            waiting: list[asyncio.Future[Any]] = [results, stop]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not results.done():
                results.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await results
                say("interrupted: finishing the steps in progress, then stopping")
                return 130
    finally:
        await client.close()
    print_summary([(h.id, *row) for h, row in zip(handles, results.result(), strict=True)])
    print("\nRun it again: finished orders are not run twice (--reset starts over).")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("perdure-demo.db"),
        help="SQLite file holding the workflows (default: %(default)s)",
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the database first and start from scratch"
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The demo prints every attempt itself; the worker's own warning (with its traceback)
    # for each failed attempt would say it twice.
    logging.getLogger("perdure.worker").setLevel(logging.ERROR)
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    code = asyncio.run(main(args.db))
    if code == 130:
        print("interrupted — run again to resume")
    sys.exit(code)
