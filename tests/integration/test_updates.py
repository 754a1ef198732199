"""Updates: validated, recorded, deduplicated, replayed without re-validation."""

from __future__ import annotations

import asyncio

import pytest

from perdure import Worker, workflow
from perdure.client import (
    WithStartWorkflowOperation,
    WorkflowIDConflictPolicy,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from perdure.exceptions import ApplicationError
from perdure.testing import WorkflowEnvironment
from perdure.worker import Replayer

VALIDATIONS: list[int] = []


@workflow.defn
class Account:
    def __init__(self) -> None:
        self.balance = 100
        self.closed = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.closed)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.balance

    @workflow.update
    async def withdraw(self, amount: int) -> int:
        if amount == 13:
            raise ApplicationError("unlucky amount", type="Unlucky")
        self.balance -= amount
        return self.balance

    @withdraw.validator
    def check_withdraw(self, amount: int) -> None:
        VALIDATIONS.append(amount)
        if amount > self.balance:
            raise ValueError(f"insufficient funds: balance {self.balance}, asked {amount}")

    @workflow.update
    async def slow_withdraw(self, amount: int) -> int:
        await workflow.sleep(60)  # an update handler may wait durably
        self.balance -= amount
        return self.balance

    @workflow.update
    def close(self) -> str:
        self.closed = True
        return "closed"

    @workflow.query
    def get_balance(self) -> int:
        return self.balance


async def test_update_returns_its_result_and_is_recorded(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Account], max_cached_workflows=0):
        handle = await env.client.start_workflow(Account.run, id="acct", task_queue="q")
        assert await handle.execute_update(Account.withdraw, 30) == 70
        assert await handle.query(Account.get_balance) == 70
        assert await handle.execute_update(Account.close) == "closed"
        assert await handle.result() == 70
    events = [e.event_type.value for e in (await handle.fetch_history()).events]
    assert events.count("WorkflowExecutionUpdateAccepted") == 2
    assert events.count("WorkflowExecutionUpdateCompleted") == 2


async def test_rejected_update_leaves_no_event(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Account]):
        handle = await env.client.start_workflow(Account.run, id="acct", task_queue="q")
        await handle.execute_update(Account.withdraw, 10)
        before = len((await handle.fetch_history()).events)
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(Account.withdraw, 1000)
        assert "insufficient funds: balance 90" in str(info.value.cause)
        assert len((await handle.fetch_history()).events) == before
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update("no_such_update", 1)
        assert "no update 'no_such_update'" in str(info.value.cause)
        assert await handle.query(Account.get_balance) == 90


async def test_failed_handler_fails_only_the_update(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Account]):
        handle = await env.client.start_workflow(Account.run, id="acct", task_queue="q")
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(Account.withdraw, 13)
        assert isinstance(info.value.cause, ApplicationError)
        assert info.value.cause.type == "Unlucky"
        await handle.execute_update(Account.close)
        assert await handle.result() == 100


async def test_update_ids_deduplicate(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Account]):
        handle = await env.client.start_workflow(Account.run, id="acct", task_queue="q")
        first, second = await asyncio.gather(
            handle.execute_update(Account.withdraw, 25, id="w-1"),
            handle.execute_update(Account.withdraw, 25, id="w-1"),
        )
        assert first == second == 75
        assert await handle.execute_update(Account.withdraw, 25, id="w-1") == 75
        assert await handle.query(Account.get_balance) == 75


async def test_start_update_waits_for_acceptance_only(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Account]):
        handle = await env.client.start_workflow(Account.run, id="acct", task_queue="q")
        update = await handle.start_update(
            Account.slow_withdraw, 5, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        assert await handle.query(Account.get_balance) == 100  # accepted, not yet applied
        await env.sleep(60)  # waiting on an update does not move the test clock; this does
        assert await update.result() == 95
        again = handle.get_update_handle(update.id, result_type=int)
        assert await again.result() == 95


async def test_validators_are_not_rerun_on_replay(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Account]):
        handle = await env.client.start_workflow(Account.run, id="acct", task_queue="q")
        await handle.execute_update(Account.withdraw, 7)
        await handle.execute_update(Account.close)
        await handle.result()
    VALIDATIONS.clear()
    await Replayer(workflows=[Account]).replay_workflow(await handle.fetch_history())
    assert VALIDATIONS == []


async def test_update_with_start(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Account]):
        for expected in (60, 20):
            op = WithStartWorkflowOperation(
                Account.run,
                id="lazy",
                task_queue="q",
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
            result = await env.client.execute_update_with_start_workflow(
                Account.withdraw, 40, start_workflow_operation=op
            )
            assert result == expected
        handle = await op.workflow_handle()
        await handle.execute_update(Account.close)
        assert await handle.result() == 20


@workflow.defn
class Quitter:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(5)
        return "done"

    @workflow.update
    async def slow(self) -> str:
        await workflow.sleep(100)
        return "late"


async def test_an_unfinished_update_fails_when_the_workflow_closes(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Quitter]):
        handle = await env.client.start_workflow(Quitter.run, id="quit", task_queue="q")
        update = await handle.start_update(Quitter.slow)
        assert await handle.result() == "done"
        with pytest.raises(WorkflowUpdateFailedError, match="failed") as info:
            await update.result()
        assert "closed" in str(info.value.cause)


@workflow.defn
class Wallet:
    def __init__(self) -> None:
        self.balance = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.balance < 0)
        return self.balance

    @workflow.signal
    async def deposit(self, amount: int) -> None:
        self.balance += amount

    @workflow.update
    def spend(self, amount: int) -> int:
        self.balance -= amount
        return self.balance

    @spend.validator
    def check_spend(self, amount: int) -> None:
        if amount > self.balance:
            raise ValueError(f"balance {self.balance} is less than {amount}")


async def test_validator_sees_signals_delivered_before_it(env: WorkflowEnvironment) -> None:
    """A signal and then an update reach the workflow in one activation: the signal's handler
    runs first, so the validator sees the deposit (as it would had they come one by one)."""
    handle = await env.client.start_workflow(Wallet.run, id="wallet", task_queue="q")
    await handle.signal(Wallet.deposit, 500)
    spending = asyncio.ensure_future(handle.execute_update(Wallet.spend, 300))
    run_id = (await handle.describe()).run_id
    # Until the update is waiting beside the signal (the store offers no event to await).
    while not await env.client.store.requested_updates(run_id):  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    async with Worker(env.client, task_queue="q", workflows=[Wallet]):
        assert await spending == 200
        history = await handle.fetch_history()
    await Replayer(workflows=[Wallet]).replay_workflow(history)
