"""Bank accounts as entity workflows, and transfers between them.

Run it::

    pip install -e .
    python examples/bank_account.py            # uses ./perdure-bank.db
    python examples/bank_account.py --reset    # forget earlier runs and start fresh

What it shows:

* **One workflow per account** (id ``account-<name>``) owns the balance: an
  ``EntityWorkflow[Account]`` from ``perdure.patterns``, which runs its handlers one at a
  time in arrival order, continues as new with the account when the history grows, and ends
  it when ``close`` calls ``end()``. Deposits and withdrawals are *updates*: the caller waits
  and gets the new balance back. Each handler checks the balance again before changing it,
  so two withdrawals can never both spend the same money.
* **Validators.** The withdrawal validator refuses an overdraft *before* the update is
  accepted: the caller gets the reason, and neither the balance nor the history changes.
* **Queries** read the balance and the statement without writing anything.
* **Transfers** are a separate workflow: withdraw from one account, then deposit into the
  other; if the deposit fails, put the money back (a compensation, as in a saga).

Why activities + updates for the transfer, and not signals? A workflow cannot send an update
to another workflow, only a signal (``workflow.get_external_workflow_handle(id).signal``),
and a signal carries no answer: the transfer could not learn that the withdrawal was refused
for lack of funds without a reply signal, a correlation id and a timeout. Instead each step is
an activity that sends the account an *update* through the client and gets the answer (new
balance, or the validator's refusal) straight back. Each update carries an id derived from
the transfer id, so when an activity is retried (a lost worker, a timeout) the account
recognises the update it already applied and returns the same answer instead of moving the
money twice.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from perdure import (
    ActivityError,
    ApplicationError,
    Client,
    RetryPolicy,
    Worker,
    WorkflowAlreadyStartedError,
    WorkflowHandle,
    activity,
    workflow,
)
from perdure.client import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
    WorkflowNotFoundError,
    WorkflowUpdateFailedError,
)
from perdure.patterns import EntityWorkflow

TASK_QUEUE = "bank"
STARTED_AT = time.monotonic()


def say(line: str) -> None:
    """Print one narrative line, stamped with the seconds since this process started."""
    print(f"[{time.monotonic() - STARTED_AT:5.1f}s] {line}", flush=True)


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


# ---------------------------------------------------------------------------------------------
# Data: plain dataclasses (stored as JSON). Money is in integer cents.
# ---------------------------------------------------------------------------------------------


@dataclass
class Movement:
    kind: str  # "deposit" or "withdrawal"
    amount_cents: int
    reference: str
    balance_after_cents: int


@dataclass
class Account:
    """An account's state: the workflow's argument, what continue-as-new carries to the next
    run, and the workflow's result once the account is closed."""

    account_id: str
    balance_cents: int = 0
    movements: list[Movement] = field(default_factory=list)


@dataclass
class MoneyRequest:
    amount_cents: int
    reference: str


# How many movements an account keeps in its statement (older ones would live in a ledger
# database in a real bank; a workflow's state should stay small).
STATEMENT_LENGTH = 50


def account_workflow_id(account_id: str) -> str:
    return f"account-{account_id}"


# ---------------------------------------------------------------------------------------------
# The account workflow. EntityWorkflow provides its run method: the handlers below run one
# at a time, in the order the requests arrived; the account continues as new with its state
# when its history grows long (once no handler is running); close() ends it, and from then
# on every request is refused.
# ---------------------------------------------------------------------------------------------


@workflow.defn
class BankAccount(EntityWorkflow[Account]):
    # Note: update ids deduplicate within a run, so a transfer step retried across a
    # continue-as-new would not be recognised; real ledgers also keep processed ids.

    def record(self, kind: str, request: MoneyRequest) -> int:
        account = self.state
        account.movements = [
            *account.movements,
            Movement(kind, request.amount_cents, request.reference, account.balance_cents),
        ][-STATEMENT_LENGTH:]
        return account.balance_cents

    def check_request(self, request: MoneyRequest, *, withdrawal: bool) -> None:
        """Raise if the request cannot be applied now. The validators call it, and so do the
        handlers: a validator runs when its request arrives, and requests ahead of it in line
        may change the balance before this one's handler runs. The balance must never go
        negative, whatever the order."""
        problem = None
        balance = self.state.balance_cents
        if request.amount_cents <= 0:
            problem = f"amount must be positive, got {money(request.amount_cents)}"
        elif withdrawal and request.amount_cents > balance:
            problem = (
                f"insufficient funds: balance {money(balance)}, asked {money(request.amount_cents)}"
            )
        if problem is not None:
            # In a validator any exception refuses the update (no trace in history); in a
            # handler an ApplicationError fails this update only.
            raise ApplicationError(problem, type="Refused")

    @workflow.update
    def deposit(self, request: MoneyRequest) -> int:
        """Returns the new balance in cents."""
        self.check_request(request, withdrawal=False)
        self.state.balance_cents += request.amount_cents
        return self.record("deposit", request)

    @deposit.validator
    def validate_deposit(self, request: MoneyRequest) -> None:
        self.check_request(request, withdrawal=False)

    @workflow.update
    def withdraw(self, request: MoneyRequest) -> int:
        """Returns the new balance in cents."""
        self.check_request(request, withdrawal=True)
        self.state.balance_cents -= request.amount_cents
        return self.record("withdrawal", request)

    @withdraw.validator
    def validate_withdraw(self, request: MoneyRequest) -> None:
        # Runs before the update is accepted. Raising refuses it: the caller gets a
        # WorkflowUpdateFailedError with the reason, and nothing is recorded. (Requests to
        # a closed account are refused before this runs: EntityWorkflow does that.)
        self.check_request(request, withdrawal=True)

    @workflow.update
    def close(self) -> Account:
        """Close the account: the workflow completes with its final state."""
        self.end()
        return self.state

    @workflow.query
    def balance_cents(self) -> int:
        return self.state.balance_cents

    @workflow.query
    def statement(self) -> list[Movement]:
        return self.state.movements


# ---------------------------------------------------------------------------------------------
# Transfer activities: each sends one update to one account, through the client. They are
# methods of a class so they can share the client: the worker registers the bound methods of
# one instance, and the workflow names them through the class (execute_activity_method).
# ---------------------------------------------------------------------------------------------


@dataclass
class AccountStep:
    account_id: str
    amount_cents: int
    reference: str
    update_id: str  # the idempotency key: a retried step sends the same update id


class AccountActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn
    async def withdraw_from_account(self, step: AccountStep) -> int:
        return await self._update(BankAccount.withdraw, "withdraw", step)

    @activity.defn
    async def deposit_to_account(self, step: AccountStep) -> int:
        return await self._update(BankAccount.deposit, "deposit", step)

    async def _update(self, update: Callable[..., Any], verb: str, step: AccountStep) -> int:
        handle = self.client.get_workflow_handle(account_workflow_id(step.account_id))
        what = f"{verb} {money(step.amount_cents)} ({step.account_id})"
        try:
            balance: int = await handle.execute_update(
                update, MoneyRequest(step.amount_cents, step.reference), id=step.update_id
            )
        except WorkflowUpdateFailedError as err:
            # The account refused (its validator said no). Retrying would get the same
            # answer: non-retryable.
            say(f"  [activity] {what}: refused: {err.cause}")
            raise ApplicationError(str(err.cause), type="Refused", non_retryable=True) from err
        except WorkflowNotFoundError as err:
            say(f"  [activity] {what}: no open account {step.account_id!r}")
            raise ApplicationError(
                f"no open account {step.account_id!r}", type="NoSuchAccount", non_retryable=True
            ) from err
        say(f"  [activity] {what}: ok, balance {money(balance)}")
        return balance


# ---------------------------------------------------------------------------------------------
# The transfer workflow.
# ---------------------------------------------------------------------------------------------


@dataclass
class TransferRequest:
    transfer_id: str
    from_account: str
    to_account: str
    amount_cents: int


@dataclass
class TransferResult:
    transfer_id: str
    status: str  # "completed", "refused" (nothing moved) or "reversed" (money put back)
    reason: str = ""


STEP_TIMEOUT = timedelta(seconds=10)
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.5), maximum_attempts=5)
# The money is out of the source account: putting it back must eventually succeed.
REFUND_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.5), maximum_attempts=0)


@workflow.defn
class Transfer:
    @workflow.run
    async def run(self, request: TransferRequest) -> TransferResult:
        tid = request.transfer_id
        amount = request.amount_cents
        reference = f"transfer {tid}: {request.from_account} -> {request.to_account}"
        try:
            await self.step(
                AccountActivities.withdraw_from_account,
                AccountStep(request.from_account, amount, reference, f"{tid}-withdraw"),
                STEP_RETRY,
            )
        except ActivityError as err:
            # Nothing has moved: a refused transfer is a business outcome, not a failure.
            return TransferResult(tid, "refused", str(err.cause))
        try:
            await self.step(
                AccountActivities.deposit_to_account,
                AccountStep(request.to_account, amount, reference, f"{tid}-deposit"),
                STEP_RETRY,
            )
        except ActivityError as err:
            # Compensate: the money left the source account, so put it back.
            await self.step(
                AccountActivities.deposit_to_account,
                AccountStep(request.from_account, amount, f"refund of {tid}", f"{tid}-refund"),
                REFUND_RETRY,
            )
            return TransferResult(tid, "reversed", str(err.cause))
        return TransferResult(tid, "completed")

    @staticmethod
    async def step(
        activity_fn: Callable[[AccountActivities, AccountStep], Awaitable[int]],
        step: AccountStep,
        retry: RetryPolicy,
    ) -> int:
        # execute_activity_method: the activity is a method, named through its class; the
        # worker runs it on the instance it was registered with.
        balance: int = await workflow.execute_activity_method(
            activity_fn,
            step,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=retry,
        )
        return balance


# ---------------------------------------------------------------------------------------------
# The client side.
# ---------------------------------------------------------------------------------------------


async def open_account(
    client: Client, account_id: str, opening_balance_cents: int
) -> WorkflowHandle[Account]:
    handle: WorkflowHandle[Account] = await client.start_workflow(
        BankAccount.run,
        Account(account_id, opening_balance_cents),
        id=account_workflow_id(account_id),
        task_queue=TASK_QUEUE,
        # Running the demo again while an account is still open reuses it.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    # A handle without a run id reaches the account's latest run, even after it continued
    # as new.
    latest: WorkflowHandle[Account] = client.get_workflow_handle_for(BankAccount.run, handle.id)
    return latest


async def transfer(client: Client, request: TransferRequest) -> TransferResult:
    """Run a transfer. The workflow id is the transfer id and REJECT_DUPLICATE forbids ever
    reusing it, so a request submitted twice (a double click, a retried HTTP call) cannot
    move the money twice: the second submission raises WorkflowAlreadyStartedError."""
    result: TransferResult = await client.execute_workflow(
        Transfer.run,
        request,
        id=request.transfer_id,
        task_queue=TASK_QUEUE,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )
    return result


# ---------------------------------------------------------------------------------------------
# The demo.
# ---------------------------------------------------------------------------------------------


async def balance_of(handle: WorkflowHandle[Account]) -> str:
    return money(await handle.query(BankAccount.balance_cents))


async def demo(client: Client) -> None:
    print("\n== accounts: deposits and withdrawals are updates ==")
    alice = await open_account(client, "alice", 100_00)
    bob = await open_account(client, "bob", 20_00)
    say(f"opened alice with {await balance_of(alice)}, bob with {await balance_of(bob)}")
    balance = await alice.execute_update(BankAccount.deposit, MoneyRequest(50_00, "salary"))
    say(f"alice: deposit $50.00 -> balance {money(balance)}")
    balance = await alice.execute_update(BankAccount.withdraw, MoneyRequest(30_00, "groceries"))
    say(f"alice: withdraw $30.00 -> balance {money(balance)}")

    before = (await bob.describe()).history_length
    try:
        await bob.execute_update(BankAccount.withdraw, MoneyRequest(50_00, "concert tickets"))
    except WorkflowUpdateFailedError as err:
        say(f"bob: withdraw $50.00 -> REJECTED by the validator: {err.cause}")
    after = (await bob.describe()).history_length
    say(
        f"bob: balance still {await balance_of(bob)}; history {before} events before, "
        f"{after} after (a refused update leaves no trace)"
    )

    print("\n== transfers: a workflow that withdraws, then deposits (or puts the money back) ==")
    # Transfer ids would come from the request that asked for the transfer; here they are
    # made unique per run of the demo, so the demo can run again on the same database.
    session = uuid.uuid4().hex[:6]
    requests = [
        TransferRequest(f"tr-{session}-1", "alice", "bob", 70_00),
        TransferRequest(f"tr-{session}-2", "bob", "alice", 500_00),
        TransferRequest(f"tr-{session}-3", "alice", "carol", 10_00),
    ]
    for request in requests:
        say(
            f"{request.transfer_id}: {request.from_account} -> {request.to_account} "
            f"{money(request.amount_cents)}"
        )
        result = await transfer(client, request)
        reason = f" ({result.reason})" if result.reason else ""
        say(
            f"{request.transfer_id}: {result.status.upper()}{reason}; "
            f"alice {await balance_of(alice)}, bob {await balance_of(bob)}"
        )
    try:
        await transfer(client, requests[0])
    except WorkflowAlreadyStartedError:
        say(f"{requests[0].transfer_id} submitted again: refused, it already ran (no double move)")

    print("\n== statements (queries) and closing ==")
    for handle in (alice, bob):
        movements: list[Movement] = await handle.query(BankAccount.statement)
        say(f"{handle.id}:")
        for m in movements:
            sign = "+" if m.kind == "deposit" else "-"
            print(
                f"         {sign}{money(m.amount_cents):>9}  -> {money(m.balance_after_cents):>9}"
                f"  {m.reference}"
            )
    for handle in (alice, bob):
        summary: Account = await handle.execute_update(BankAccount.close)
        status = (await handle.describe()).status.name
        say(f"{handle.id} closed with {money(summary.balance_cents)}; workflow {status}")


async def main(db: Path) -> int:
    print(f"perdure bank account demo, database {db}")
    client = await Client.connect(f"sqlite:///{db}")
    activities = AccountActivities(client)
    try:
        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[BankAccount, Transfer],
            activities=[activities.withdraw_from_account, activities.deposit_to_account],
        ):
            await demo(client)
    finally:
        await client.close()
    print("\nDone.")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("perdure-bank.db"),
        help="SQLite file holding the workflows (default: %(default)s)",
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the database first and start from scratch"
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    sys.exit(asyncio.run(main(args.db)))
