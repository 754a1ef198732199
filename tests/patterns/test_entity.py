"""perdure.patterns.EntityWorkflow: state changed by signals and updates one at a time in
arrival order, read by queries, carried over continue-as-new, ended by a handler or after an
idle period, deadlines from the state; on the virtual clock, every history replayed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from perdure import Worker, WorkflowExecutionStatus, activity, workflow
from perdure.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowIDConflictPolicy,
    WorkflowUpdateFailedError,
)
from perdure.patterns import EntityWorkflow
from perdure.testing import WorkflowEnvironment
from perdure.worker import Replayer
from perdure.workflow._definition import WorkflowDefinition

HOUR = timedelta(hours=1)
GATES: dict[str, asyncio.Event] = {}  # slow_step(tag) waits for GATES[tag] when there is one


@pytest.fixture(autouse=True)
def _reset() -> None:
    GATES.clear()


@activity.defn
async def slow_step(tag: str) -> str:
    gate = GATES.get(tag)
    if gate is not None:
        await gate.wait()
    return tag.upper()


@dataclass
class Tally:
    total: int = 0
    log: list[str] = field(default_factory=list)


@workflow.defn
class TallyEntity(EntityWorkflow[Tally]):
    @workflow.signal
    def note(self, text: str) -> None:
        self.state.log.append(text)

    @workflow.update
    def add(self, amount: int) -> int:
        self.state.total += amount
        self.state.log.append(f"+{amount}")
        return self.state.total

    @add.validator
    def check_add(self, amount: int) -> None:
        if amount <= 0:
            raise ValueError(f"amount must be positive, got {amount}")

    @workflow.update
    async def slow(self, tag: str) -> str:
        self.state.log.append(f"{tag}:start")
        result: str = await workflow.execute_activity(
            slow_step, tag, start_to_close_timeout=timedelta(minutes=5)
        )
        self.state.log.append(f"{tag}:end")
        return result

    @workflow.update
    async def wait(self, hours: float) -> None:
        self.state.log.append(f"wait {hours:g}h")
        await workflow.sleep(timedelta(hours=hours))

    @workflow.update
    def close(self) -> Tally:
        self.end()
        return self.state

    @workflow.query
    def view(self) -> Tally:
        return self.state


@workflow.defn
class ShortTally(TallyEntity):
    max_history_length = 12


@workflow.defn
class EveryFewMessages(TallyEntity):
    """Continues as new after 3 changes in a run: the limit moves at once (a history length
    is read as of the start of the workflow task)."""

    @workflow.init
    def __init__(self, state: Tally | None = None) -> None:
        super().__init__(state)
        self.changes_at_start = len(self.state.log)

    def should_continue_as_new(self) -> bool:
        return len(self.state.log) - self.changes_at_start >= 3


@workflow.defn
class IdleTally(TallyEntity):
    idle_timeout = HOUR

    async def on_idle(self) -> None:
        self.state.log.append("idle")
        # The entity has ended: messages arriving meanwhile are refused.
        await workflow.sleep(timedelta(minutes=10))
        self.state.log.append("bye")


ALL = [TallyEntity, ShortTally, EveryFewMessages, IdleTally]


@pytest.fixture
async def client(perdure_env: WorkflowEnvironment, perdure_worker: Any) -> Client:
    await perdure_worker(workflows=ALL, activities=[slow_step])
    c: Client = perdure_env.client
    return c


@pytest.fixture
async def paused(perdure_env: WorkflowEnvironment) -> AsyncIterator[WorkflowEnvironment]:
    """Time moves only when the test says so (a client waiting does not move it)."""
    async with perdure_env.auto_time_skipping_disabled():
        yield perdure_env


async def start(
    client: Client, entity: Any = TallyEntity, state: Tally | None = None, *, id: str = "t"
) -> WorkflowHandle[Tally]:
    handle: WorkflowHandle[Tally] = await client.start_workflow(
        entity.run, state, id=id, task_queue="test"
    )
    return handle


async def runs_of(client: Client, workflow_id: str) -> list[Any]:
    return [wf async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'")]


async def test_updates_and_signals_change_the_state_and_queries_read_it(client: Client) -> None:
    handle = await start(client, state=Tally(total=5))
    assert await handle.execute_update(TallyEntity.add, 3) == 8
    await handle.signal(TallyEntity.note, "hello")
    assert await handle.execute_update(TallyEntity.add, 2) == 10
    assert await handle.query(TallyEntity.view) == Tally(10, ["+3", "hello", "+2"])

    # The validator still refuses before acceptance: no trace in history, no change.
    before = (await handle.describe()).history_length
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(TallyEntity.add, -1)
    assert "amount must be positive, got -1" in str(info.value.cause)
    assert (await handle.describe()).history_length == before

    # end() closes the entity: the workflow's result is the final state.
    assert await handle.execute_update(TallyEntity.close) == Tally(10, ["+3", "hello", "+2"])
    assert await handle.result() == Tally(10, ["+3", "hello", "+2"])
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_no_state_given_starts_from_the_initial_state(client: Client) -> None:
    handle = await start(client)
    assert await handle.execute_update(TallyEntity.add, 4) == 4
    await handle.execute_update(TallyEntity.close)
    assert await handle.result() == Tally(4, ["+4"])


async def test_messages_are_handled_one_at_a_time_in_arrival_order(
    client: Client, paused: WorkflowEnvironment
) -> None:
    GATES.update(a=asyncio.Event(), c=asyncio.Event())
    handle = await start(client)
    # Each update is accepted before the next message is sent: this is the arrival order.
    a = await handle.start_update(TallyEntity.slow, "a")
    await handle.signal(TallyEntity.note, "b")
    c = await handle.start_update(TallyEntity.slow, "c")
    await handle.signal(TallyEntity.note, "d")
    e = await handle.start_update(TallyEntity.add, 1)
    # Everything has arrived (e was accepted after the rest), but only a has started: its
    # activity is held, and the others wait their turn.
    assert (await handle.query(TallyEntity.view)).log == ["a:start"]
    GATES["c"].set()  # c's activity may finish at once once c starts
    GATES["a"].set()
    assert (await a.result(), await c.result(), await e.result()) == ("A", "C", 1)
    assert (await handle.query(TallyEntity.view)).log == [
        "a:start",
        "a:end",
        "b",
        "c:start",
        "c:end",
        "d",
        "+1",
    ]


async def test_continue_as_new_carries_the_state(client: Client) -> None:
    handle = await start(client, ShortTally, Tally(total=100))
    first_run = (await handle.describe()).run_id
    for amount in range(1, 11):
        assert await handle.execute_update(ShortTally.add, amount) == 100 + sum(
            range(1, amount + 1)
        )
        await handle.signal(ShortTally.note, f"n{amount}")
    runs = await runs_of(client, "t")
    assert len(runs) >= 3
    continued = [r for r in runs if r.status == WorkflowExecutionStatus.CONTINUED_AS_NEW]
    assert len(continued) == len(runs) - 1
    assert (await handle.describe()).run_id != first_run
    # Each run's history stays under the limit (plus the one task that continues it).
    for run in runs:
        assert (
            await client.get_workflow_handle("t", run_id=run.run_id).describe()
        ).history_length < 12 + 6
    state = await handle.query(ShortTally.view)
    assert state.total == 155
    assert state.log == [entry for n in range(1, 11) for entry in (f"+{n}", f"n{n}")]
    await handle.execute_update(ShortTally.close)
    assert (await handle.result()).total == 155


async def test_messages_sent_together_survive_continue_as_new(client: Client) -> None:
    handle = await start(client, ShortTally)
    for _ in range(3):
        await asyncio.gather(
            *(handle.execute_update(ShortTally.add, 1) for _ in range(6)),
            *(handle.signal(ShortTally.note, "x") for _ in range(6)),
        )
    state = await handle.query(ShortTally.view)
    assert (state.total, state.log.count("x"), len(state.log)) == (18, 18, 36)
    assert len(await runs_of(client, "t")) >= 2


async def test_an_update_handed_on_by_two_continue_as_news_reaches_its_caller(
    client: Client, paused: WorkflowEnvironment
) -> None:
    handle = await start(client, EveryFewMessages)
    await handle.execute_update(EveryFewMessages.add, 1)
    # The signals alone take the first run past its limit: it continues as new before it
    # sees the updates, which go on to the second run; five updates take that one past its
    # limit too. Each caller still gets its update's result.
    results = await asyncio.gather(
        *(handle.signal(EveryFewMessages.note, "x") for _ in range(5)),
        *(handle.execute_update(EveryFewMessages.add, 1) for _ in range(5)),
    )
    assert sorted(r for r in results if r is not None) == [2, 3, 4, 5, 6]
    assert len(await runs_of(client, "t")) >= 3


async def test_handlers_finish_before_the_run_continues_as_new(
    client: Client, paused: WorkflowEnvironment
) -> None:
    GATES["slow"] = asyncio.Event()
    handle = await start(client, ShortTally)
    slow = await handle.start_update(ShortTally.slow, "slow")
    for amount in range(6):  # past the history limit while "slow" still runs
        await handle.signal(ShortTally.note, f"n{amount}")
    last = await handle.start_update(ShortTally.add, 1)  # accepted: the signals were seen
    assert (await handle.describe()).history_length > 12
    assert len(await runs_of(client, "t")) == 1
    GATES["slow"].set()
    assert (await slow.result(), await last.result()) == ("SLOW", 1)
    await paused.sleep(0)
    assert len(await runs_of(client, "t")) == 2
    assert (await handle.query(ShortTally.view)).log == [
        "slow:start",
        "slow:end",
        *(f"n{amount}" for amount in range(6)),
        "+1",
    ]


async def test_idle_timeout_ends_the_entity(client: Client, paused: WorkflowEnvironment) -> None:
    handle = await start(client, IdleTally)
    await paused.sleep(HOUR / 2)
    await handle.execute_update(IdleTally.add, 1)  # the hour starts again
    await paused.sleep(HOUR - timedelta(seconds=1))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await paused.sleep(timedelta(seconds=2))  # an hour since the update: on_idle runs
    assert (await handle.query(IdleTally.view)).log == ["+1", "idle"]

    # Ended: updates are refused (without a trace), signals dropped.
    before = (await handle.describe()).history_length
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(IdleTally.add, 1)
    assert "has ended and takes no more messages" in str(info.value.cause)
    assert (await handle.describe()).history_length == before
    await handle.signal(IdleTally.note, "too late")

    await paused.sleep(timedelta(minutes=10))
    assert await handle.result() == Tally(1, ["+1", "idle", "bye"])
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_a_message_still_running_is_not_idleness(
    client: Client, paused: WorkflowEnvironment
) -> None:
    handle = await start(client, IdleTally)
    waiting = await handle.start_update(IdleTally.wait, 3)  # runs for 3 hours
    await paused.sleep(3 * HOUR + HOUR / 2)
    await waiting.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await paused.sleep(HOUR / 2 + timedelta(seconds=1))  # an hour since it finished
    await paused.sleep(timedelta(minutes=10))
    assert await handle.result() == Tally(0, ["wait 3h", "idle", "bye"])


async def test_idleness_survives_continue_as_new(
    client: Client, paused: WorkflowEnvironment
) -> None:
    @workflow.defn(name="IdleShortTally")
    class IdleShortTally(IdleTally):
        max_history_length = 12

    async with Worker(client, task_queue="idle-short", workflows=[IdleShortTally]):
        handle: WorkflowHandle[Tally] = await client.start_workflow(
            IdleShortTally.run, id="is", task_queue="idle-short"
        )
        for _ in range(6):
            await handle.execute_update(IdleShortTally.add, 1)
        assert len(await runs_of(client, "is")) >= 2
        await paused.sleep(HOUR + timedelta(minutes=11))
        assert await handle.result() == Tally(6, [*["+1"] * 6, "idle", "bye"])


async def test_update_with_start_creates_the_entity_on_first_use(client: Client) -> None:
    async def add(amount: int) -> int:
        start_op = WithStartWorkflowOperation(
            TallyEntity.run,
            Tally(total=10),
            id="lazy",
            task_queue="test",
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        total: int = await client.execute_update_with_start_workflow(
            TallyEntity.add, amount, start_workflow_operation=start_op
        )
        return total

    assert await add(1) == 11  # created with its initial state, then updated
    assert await add(2) == 13  # found running
    assert len(await runs_of(client, "lazy")) == 1
    handle = client.get_workflow_handle_for(TallyEntity.run, "lazy")
    assert await handle.execute_update(TallyEntity.close) == Tally(13, ["+1", "+2"])
    assert await handle.result() == Tally(13, ["+1", "+2"])
    assert await add(5) == 15  # the entity ended: a new one starts under the same id
    assert len(await runs_of(client, "lazy")) == 2


# -- deadlines -----------------------------------------------------------------------------


@dataclass
class Hold:
    name: str
    until: datetime


@dataclass
class Holds:
    holds: list[Hold] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


@workflow.defn
class HoldEntity(EntityWorkflow[Holds]):
    max_history_length = 20

    @workflow.update
    def hold(self, name: str, hours: float) -> None:
        self.state.holds.append(Hold(name, workflow.now() + timedelta(hours=hours)))

    @workflow.update
    def drop(self, name: str) -> None:
        self.state.holds = [h for h in self.state.holds if h.name != name]

    @workflow.query
    def view(self) -> Holds:
        return self.state

    def next_deadline(self) -> datetime | None:
        return min((h.until for h in self.state.holds), default=None)

    async def on_deadline(self) -> None:
        now = workflow.now()
        self.state.expired += [h.name for h in self.state.holds if h.until <= now]
        self.state.holds = [h for h in self.state.holds if h.until > now]


async def test_deadlines_from_the_state_run_on_time(
    perdure_env: WorkflowEnvironment, perdure_worker: Any
) -> None:
    client = perdure_env.client
    await perdure_worker(workflows=[HoldEntity])
    async with perdure_env.auto_time_skipping_disabled():
        handle: WorkflowHandle[Holds] = await client.start_workflow(
            HoldEntity.run, id="h", task_queue="test"
        )
        await handle.execute_update(HoldEntity.hold, args=["a", 2])
        await handle.execute_update(HoldEntity.hold, args=["b", 1])
        await handle.execute_update(HoldEntity.hold, args=["c", 3])
        await perdure_env.sleep(HOUR - timedelta(seconds=1))
        assert (await handle.query(HoldEntity.view)).expired == []
        await perdure_env.sleep(timedelta(seconds=2))
        assert (await handle.query(HoldEntity.view)).expired == ["b"]
        await handle.execute_update(HoldEntity.drop, "a")  # before it expires
        await perdure_env.sleep(3 * HOUR)
        view = await handle.query(HoldEntity.view)
        assert (view.expired, view.holds) == (["b", "c"], [])
        # Deadlines set in one run fire in the next: they live in the state.
        for i in range(6):
            await handle.execute_update(HoldEntity.hold, args=[f"x{i}", 1 + i / 10])
        assert len(await runs_of(client, "h")) >= 2
        await perdure_env.sleep(2 * HOUR)
        view = await handle.query(HoldEntity.view)
        assert view.expired == ["b", "c", *(f"x{i}" for i in range(6))]


@workflow.defn
class StuckDeadline(HoldEntity):
    async def on_deadline(self) -> None:
        pass  # forgets to drop what expired


async def test_a_deadline_that_does_not_move_fails_the_workflow_task(
    perdure_env: WorkflowEnvironment, perdure_worker: Any
) -> None:
    client = perdure_env.client
    await perdure_worker(workflows=[StuckDeadline])
    handle = await client.start_workflow(StuckDeadline.run, id="stuck", task_queue="test")
    await handle.execute_update(StuckDeadline.hold, args=["a", 1])
    await perdure_env.sleep(2 * HOUR)
    failure = (await handle.describe()).last_workflow_task_failure
    assert failure is not None
    assert "on_deadline() left next_deadline()" in str(failure)
    await handle.terminate()


# -- replay and definitions ------------------------------------------------------------------


async def test_the_histories_replay(client: Client, paused: WorkflowEnvironment) -> None:
    handle = await start(client, ShortTally)
    GATES["r"] = asyncio.Event()
    slow = await handle.start_update(ShortTally.slow, "r")
    for amount in range(1, 8):
        await handle.signal(ShortTally.note, f"n{amount}")
        await handle.start_update(ShortTally.add, amount)
    GATES["r"].set()
    await slow.result()
    await handle.execute_update(ShortTally.close)
    await handle.result()
    runs = await runs_of(client, "t")
    assert len(runs) >= 2
    replayer = Replayer(workflows=[ShortTally])
    for run in runs:
        history = await client.get_workflow_handle("t", run_id=run.run_id).fetch_history()
        await replayer.replay_workflow(history)


def test_each_entity_class_has_its_own_typed_run_method() -> None:
    assert TallyEntity.run is not ShortTally.run
    assert WorkflowDefinition.from_run_fn(TallyEntity.run).name == "TallyEntity"
    assert WorkflowDefinition.from_run_fn(ShortTally.run).name == "ShortTally"
    definition = WorkflowDefinition.from_class(ShortTally)
    assert definition.arg_types == [Tally | None]
    assert definition.ret_type is Tally
    assert definition.init_takes_args  # the base's @workflow.init __init__ is inherited


def test_a_subclass_may_not_write_run_or_an_undecorated_init() -> None:
    with pytest.raises(TypeError, match="defines run"):

        class WithRun(EntityWorkflow[Tally]):
            async def run(self, state: Tally | None = None) -> Tally:
                return Tally()

    with pytest.raises(TypeError, match=r"must be decorated with @workflow.init"):

        class WithInit(EntityWorkflow[Tally]):
            def __init__(self) -> None:
                super().__init__(Tally())


@dataclass
class Account:
    owner: str
    balance: int = 0


@workflow.defn
class AccountEntity(EntityWorkflow[Account]):
    @workflow.init
    def __init__(self, state: Account | None = None) -> None:
        super().__init__(state)
        self.idle_timeout = timedelta(days=self.state.balance or 1)  # per entity

    def initial_state(self) -> Account:
        return Account(owner=workflow.info().workflow_id)

    @workflow.update
    def deposit(self, amount: int) -> int:
        self.state.balance += amount
        return self.state.balance


async def test_an_init_and_initial_state_of_the_subclass(
    perdure_env: WorkflowEnvironment, perdure_worker: Any
) -> None:
    client = perdure_env.client
    await perdure_worker(workflows=[AccountEntity])
    async with perdure_env.auto_time_skipping_disabled():
        handle = await client.start_workflow(AccountEntity.run, id="acct-1", task_queue="test")
        assert await handle.execute_update(AccountEntity.deposit, 5) == 5
        await perdure_env.sleep(timedelta(days=1, seconds=1))
        assert await handle.result() == Account("acct-1", 5)
        rich = await client.start_workflow(
            AccountEntity.run, Account("bo", 3), id="acct-2", task_queue="test"
        )
        await perdure_env.sleep(timedelta(days=2, hours=23))
        assert (await rich.describe()).status == WorkflowExecutionStatus.RUNNING
        await perdure_env.sleep(timedelta(hours=1, seconds=1))
        assert await rich.result() == Account("bo", 3)
