"""examples/bank_account.py: accounts (updates, the overdraft validator, queries, update-id
deduplication), transfers (completed, refused, reversed, never twice), and the script."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from example_support import EXAMPLES, load_example, run_example

from perdure import Worker, WorkflowAlreadyStartedError, WorkflowExecutionStatus
from perdure.client import WorkflowUpdateFailedError
from perdure.testing import WorkflowEnvironment

SCRIPT = EXAMPLES / "bank_account.py"

ex = load_example(SCRIPT)
Account = ex.BankAccount
Money = ex.MoneyRequest


async def test_accounts_and_transfers() -> None:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        acts = ex.AccountActivities(env.client)
        async with Worker(
            env.client,
            task_queue=ex.TASK_QUEUE,
            workflows=[Account, ex.Transfer],
            activities=[acts.withdraw_from_account, acts.deposit_to_account],
        ):
            client = env.client
            alice = await ex.open_account(client, "alice", 100_00)
            bob = await ex.open_account(client, "bob", 20_00)

            # Deposits and withdrawals return the new balance.
            assert await alice.execute_update(Account.deposit, Money(50_00, "salary")) == 150_00
            assert await alice.execute_update(Account.withdraw, Money(30_00, "rent")) == 120_00

            # An overdraft is refused by the validator: no balance change, no history.
            before = (await bob.describe()).history_length
            with pytest.raises(WorkflowUpdateFailedError) as info:
                await bob.execute_update(Account.withdraw, Money(50_00, "tickets"))
            assert "insufficient funds: balance $20.00, asked $50.00" in str(info.value.cause)
            for bad in (Account.withdraw, Account.deposit):
                with pytest.raises(WorkflowUpdateFailedError, match="failed") as info:
                    await bob.execute_update(bad, Money(0, "nothing"))
                assert "amount must be positive" in str(info.value.cause)
            assert (await bob.describe()).history_length == before
            assert await bob.query(Account.balance_cents) == 20_00
            assert await bob.query(Account.statement) == []

            # The same update id is applied once: a retried transfer step is harmless.
            for _ in range(3):
                balance = await bob.execute_update(
                    Account.deposit, Money(5_00, "gift"), id="gift-1"
                )
                assert balance == 25_00
            assert await bob.query(Account.balance_cents) == 25_00

            # Concurrent withdrawals cannot overdraw, however they are batched.
            results = await asyncio.gather(
                *(bob.execute_update(Account.withdraw, Money(10_00, f"w{i}")) for i in range(5)),
                return_exceptions=True,
            )
            assert sorted(r for r in results if isinstance(r, int)) == [5_00, 15_00]
            refused = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
            assert len(refused) == 3
            assert await bob.query(Account.balance_cents) == 5_00

            # Transfers.
            done = await ex.transfer(client, ex.TransferRequest("t1", "alice", "bob", 70_00))
            assert (done.status, done.reason) == ("completed", "")
            assert await alice.query(Account.balance_cents) == 50_00
            assert await bob.query(Account.balance_cents) == 75_00

            refused_t = await ex.transfer(client, ex.TransferRequest("t2", "bob", "alice", 500_00))
            assert refused_t.status == "refused"
            assert "insufficient funds" in refused_t.reason
            assert await alice.query(Account.balance_cents) == 50_00
            assert await bob.query(Account.balance_cents) == 75_00

            reversed_t = await ex.transfer(client, ex.TransferRequest("t3", "alice", "nobody", 10))
            assert reversed_t.status == "reversed"
            assert "no open account 'nobody'" in reversed_t.reason
            assert await alice.query(Account.balance_cents) == 50_00
            kinds = [(m.kind, m.reference) for m in await alice.query(Account.statement)][-2:]
            assert kinds == [
                ("withdrawal", "transfer t3: alice -> nobody"),
                ("deposit", "refund of t3"),
            ]

            # A transfer id runs once, ever.
            with pytest.raises(WorkflowAlreadyStartedError):
                await ex.transfer(client, ex.TransferRequest("t1", "alice", "bob", 70_00))
            assert await bob.query(Account.balance_cents) == 75_00

            # Closing ends the account's workflow with its final summary.
            summary = await bob.execute_update(Account.close)
            assert summary.balance_cents == 75_00
            assert (await bob.result()).balance_cents == 75_00
            assert (await bob.describe()).status == WorkflowExecutionStatus.COMPLETED
            closed = await ex.transfer(client, ex.TransferRequest("t4", "alice", "bob", 1_00))
            assert closed.status == "reversed"
            assert await alice.query(Account.balance_cents) == 50_00


@pytest.mark.realtime
def test_script_runs(tmp_path: Path) -> None:
    out = run_example(SCRIPT, tmp_path / "bank.db")
    assert "bob: withdraw $50.00 -> REJECTED by the validator: insufficient funds" in out
    assert re.search(r"bob: balance still \$20\.00; history (\d+) events before, \1 after", out)
    assert "-1: COMPLETED; alice $50.00, bob $90.00" in out
    assert "-2: REFUSED (insufficient funds: balance $90.00, asked $500.00)" in out
    assert "-3: REVERSED (no open account 'carol'); alice $50.00, bob $90.00" in out
    assert "submitted again: refused" in out
    assert "account-alice closed with $50.00; workflow COMPLETED" in out
