"""Resetting a workflow: a workflow task runs again on the current code, in a new run that
carries the history before it (Temporal's ResetWorkflowExecution)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from storerows import run_rows, task_refs, timer_seqs

from perdure import Worker, activity, workflow
from perdure._common.events import EventType
from perdure.client import (
    AsyncActivityNotFoundError,
    ResetType,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowNotFoundError,
)
from perdure.exceptions import ApplicationError, TerminatedError
from perdure.testing import WorkflowEnvironment

# Real time, only as a bound on waiting for a worker to hand over a token.
WAIT = 10.0

# The "deployed code": tests flip it to fix the bug.
CODE = {"buggy": True}
PRICED: list[int] = []


@pytest.fixture(autouse=True)
def fresh_state() -> None:
    global TOKENS
    CODE["buggy"] = True
    PRICED.clear()
    TOKENS = asyncio.Queue()


@activity.defn
async def price(amount: int) -> int:
    PRICED.append(amount)
    return amount + amount // 10


@workflow.defn
class Checkout:
    @workflow.run
    async def run(self, amount: int) -> str:
        total = await workflow.execute_activity(
            price, amount, start_to_close_timeout=timedelta(seconds=10)
        )
        if CODE["buggy"]:
            raise ApplicationError(f"cannot round {total}")
        return f"charged {total}"


async def completed_task_ids(env: WorkflowEnvironment, workflow_id: str, run_id: str) -> list[int]:
    history = await env.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return [e.event_id for e in history.events if e.event_type is EventType.WORKFLOW_TASK_COMPLETED]


@pytest.mark.perdure_no_replay  # the old run failed on the buggy code, which is gone
async def test_reset_after_a_bug_fix_completes_a_failed_workflow(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Checkout], activities=[price]):
        handle = await env.client.start_workflow(Checkout.run, 100, id="order", task_queue="q")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        old_run = handle.result_run_id
        assert old_run is not None
        CODE["buggy"] = False  # the fix is deployed
        new_run = await env.client.get_workflow_handle("order").reset(reason="fixed rounding")
        assert new_run != old_run
        # The old run's handle follows to the new run; the activity's result is carried.
        assert await handle.result() == "charged 110"
        assert PRICED == [100]

        old = await env.client.get_workflow_handle("order", run_id=old_run).describe()
        new = await env.client.get_workflow_handle("order", run_id=new_run).describe()
        assert old.status == WorkflowExecutionStatus.FAILED  # a closed run stays as it was
        assert new.status == WorkflowExecutionStatus.COMPLETED
        assert old.reset_to is not None and new.reset_from is not None
        assert old.reset_to == new.reset_from
        assert (old.reset_to.base_run_id, old.reset_to.new_run_id) == (old_run, new_run)
        assert old.reset_to.reason == "fixed rounding"
        assert old.reset_from is None and new.reset_to is None
        assert new.first_execution_run_id == old_run

        point = old.reset_to.event_id
        assert point == (await completed_task_ids(env, "order", old_run))[-1]
        old_events = (
            await env.client.get_workflow_handle("order", run_id=old_run).fetch_history()
        ).events
        new_events = (
            await env.client.get_workflow_handle("order", run_id=new_run).fetch_history()
        ).events
        # The new run carries the old history before the reset point, then records the reset.
        assert [(e.event_type, e.attributes) for e in new_events[: point - 1]] == [
            (e.event_type, e.attributes) for e in old_events[: point - 1]
        ]
        record = new_events[point - 1]
        assert record.event_type is EventType.WORKFLOW_TASK_FAILED
        assert record.attributes["cause"] == "ResetWorkflow"
        assert record.attributes["base_run_id"] == old_run
        assert [e.event_type for e in new_events[point:]] == [
            EventType.WORKFLOW_TASK_COMPLETED,
            EventType.WORKFLOW_EXECUTION_COMPLETED,
        ]


@workflow.defn
class Collector:
    def __init__(self) -> None:
        self.items: list[str] = []

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.query
    def seen(self) -> list[str]:
        return self.items

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: "done" in self.items)
        return self.items


async def _collect(env: WorkflowEnvironment, workflow_id: str, items: list[str]) -> str:
    """Start a Collector and signal it ``items``, each seen by a task of its own."""
    handle = await env.client.start_workflow(Collector.run, id=workflow_id, task_queue="q")
    for item in items:
        await handle.signal(Collector.add, item)
        assert (await handle.query(Collector.seen))[-1] == item
    assert handle.result_run_id is not None
    return handle.result_run_id


@pytest.mark.parametrize("reapply", [True, False])
async def test_signals_after_the_reset_point_are_reapplied_once_in_order(
    env: WorkflowEnvironment, reapply: bool
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        old_run = await _collect(env, "c", ["a", "b", "c"])
        # Tasks: the first (started), then one per signal: reset to the one that saw "a".
        tasks = await completed_task_ids(env, "c", old_run)
        assert len(tasks) == 4
        saw_a = tasks[1]
        handle = env.client.get_workflow_handle("c", run_id=old_run)
        new_run = await handle.reset(saw_a, reason="replay b and c", reapply_signals=reapply)
        await env.client.get_workflow_handle("c").signal(Collector.add, "done")
        expected = ["a", "b", "c", "done"] if reapply else ["a", "done"]
        assert await handle.result() == expected
        described = await env.client.get_workflow_handle("c", run_id=old_run).describe()
        assert described.status == WorkflowExecutionStatus.TERMINATED
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result(follow_runs=False)
        assert isinstance(failure.value.cause, TerminatedError)
        assert str(failure.value.cause) == "replay b and c"
        events = (await env.client.get_workflow_handle("c", run_id=new_run).fetch_history()).events
        signals = [
            e.attributes["input"]
            for e in events
            if e.event_type is EventType.WORKFLOW_EXECUTION_SIGNALED
        ]
        assert len(signals) == len(expected)  # each once


async def test_reset_types_pick_the_first_and_last_workflow_task(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        await _collect(env, "first", ["a", "b"])
        first_run = await env.client.get_workflow_handle("first").reset(
            reset_type=ResetType.FIRST_WORKFLOW_TASK, reason="from the start"
        )
        await _collect(env, "last", ["a", "b"])
        last_run = await env.client.get_workflow_handle("last").reset(reason="last task")
        for workflow_id, run_id in (("first", first_run), ("last", last_run)):
            handle = env.client.get_workflow_handle(workflow_id)
            assert (await handle.describe()).run_id == run_id
            await handle.signal(Collector.add, "done")
            assert await handle.result() == ["a", "b", "done"]
        first = await env.client.get_workflow_handle("first").describe()
        last = await env.client.get_workflow_handle("last").describe()
        assert first.reset_from is not None and first.reset_from.event_id == 2
        assert last.reset_from is not None and last.reset_from.event_id > 2


async def test_a_bad_reset_point_is_refused_with_the_points_there_are(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Collector]):
        run_id = await _collect(env, "bad", ["a"])
        handle = env.client.get_workflow_handle("bad")
        with pytest.raises(ValueError, match=r"to event 3: .* this run's are 2, 4"):
            await handle.reset(3, reason="not a task")
        with pytest.raises(ValueError, match="did not continue from another one"):
            await handle.reset(reset_type=ResetType.LAST_CONTINUED_AS_NEW, reason="no chain")
        with pytest.raises(WorkflowNotFoundError):
            await env.client.get_workflow_handle("nobody").reset(reason="none")
        described = await handle.describe()
        assert (described.run_id, described.status) == (run_id, WorkflowExecutionStatus.RUNNING)
        await handle.signal(Collector.add, "done")
        assert await handle.result() == ["a", "done"]


TOKENS: asyncio.Queue[tuple[str, str, bytes]]


@activity.defn
async def wait_outside(name: str) -> str:
    info = activity.info()
    TOKENS.put_nowait((info.workflow_run_id, name, info.task_token))
    activity.raise_complete_async()


@workflow.defn
class Busy:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self) -> list[str]:
        month = timedelta(days=30)
        first = workflow.start_activity(wait_outside, "first", start_to_close_timeout=month)
        early = asyncio.create_task(workflow.sleep(timedelta(hours=1)))
        await workflow.wait_condition(lambda: self.go)
        second = workflow.start_activity(wait_outside, "second", start_to_close_timeout=month)
        late = asyncio.create_task(workflow.sleep(timedelta(hours=2)))
        results = [await first, await second]
        await asyncio.gather(early, late)
        return results


async def tokens(count: int) -> dict[tuple[str, str], bytes]:
    got = {}
    for _ in range(count):
        run_id, name, token = await asyncio.wait_for(TOKENS.get(), WAIT)
        got[(run_id, name)] = token
    return got


async def test_reset_with_running_activities_and_timers_leaves_no_orphans(
    env: WorkflowEnvironment,
) -> None:
    store = env.client._store
    async with Worker(env.client, task_queue="q", workflows=[Busy], activities=[wait_outside]):
        handle = await env.client.start_workflow(Busy.run, id="busy", task_queue="q")
        old_run = handle.result_run_id
        assert old_run is not None
        await handle.signal(Busy.proceed)
        old_tokens = await tokens(2)  # both activities run, both timers are set
        assert await timer_seqs(store, old_run) == [1, 2]
        new_run = await env.client.get_workflow_handle("busy").reset(reason="redo the second")

        # Nothing of the old run's is left to run: no task, no timer, no buffered input.
        old_rows = await run_rows(store, old_run)
        assert (old_rows["tasks"], old_rows["timers"], old_rows["inbox"]) == (0, 0, 0)
        # Its activities' late results are refused, and leave its history as it was.
        old = env.client.get_workflow_handle("busy", run_id=old_run)
        length = (await old.describe()).history_length
        for name in ("first", "second"):
            late = env.client.get_async_activity_handle(task_token=old_tokens[(old_run, name)])
            with pytest.raises(AsyncActivityNotFoundError):
                await late.complete(f"late {name}")
        assert (await old.describe()).history_length == length

        # The new run starts both activities again: the first was scheduled before the reset
        # point (carried, and not finished there), the second by the task run again. Its early
        # timer is carried; the late one is started again.
        new_tokens = await tokens(2)
        assert set(new_tokens) == {(new_run, "first"), (new_run, "second")}
        assert await task_refs(store, new_run, kind=2) == [1, 2]
        assert await timer_seqs(store, new_run) == [1, 2]
        for name in ("first", "second"):
            done = env.client.get_async_activity_handle(task_token=new_tokens[(new_run, name)])
            await done.complete(f"{name} done")
        assert await handle.result() == ["first done", "second done"]
        new_rows = await run_rows(store, new_run)
        assert (new_rows["tasks"], new_rows["timers"]) == (0, 0)


@workflow.defn
class Looping:
    @workflow.run
    async def run(self, n: int) -> str:
        if n == 0:
            if CODE["buggy"]:
                raise ApplicationError("the last run is broken")
            return "done"
        workflow.continue_as_new(n - 1)


@pytest.mark.perdure_no_replay  # the failed run's code is gone
async def test_last_continued_as_new_resets_the_run_before(env: WorkflowEnvironment) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Looping]):
        handle = await env.client.start_workflow(Looping.run, 2, id="loop", task_queue="q")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        failed = await env.client.get_workflow_handle("loop").describe()
        CODE["buggy"] = False
        new_run = await env.client.get_workflow_handle("loop").reset(
            reset_type=ResetType.LAST_CONTINUED_AS_NEW, reason="again from the run before"
        )
        new = await env.client.get_workflow_handle("loop", run_id=new_run).describe()
        assert new.reset_from is not None
        # The run that continued as new into the failed one is the base: its last task (the
        # one that continued as new) runs again, and continues as new again.
        assert new.reset_from.base_run_id not in (failed.run_id, handle.result_run_id)
        assert await handle.result() == "done"
        latest = await env.client.get_workflow_handle("loop").describe()
        assert latest.status == WorkflowExecutionStatus.COMPLETED
        assert latest.run_id != new_run  # the reset run continued as new in turn


@workflow.defn
class Kid:
    def __init__(self) -> None:
        self.done = False

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return f"kid of run {workflow.info().parent.run_id if workflow.info().parent else None}"


@workflow.defn
class Parent:
    def __init__(self) -> None:
        self.poked = False

    @workflow.signal
    def poke(self) -> None:
        self.poked = True

    @workflow.query
    def was_poked(self) -> bool:
        return self.poked

    @workflow.run
    async def run(self) -> str:
        kid = await workflow.start_child_workflow(Kid.run, id="kid")
        await workflow.wait_condition(lambda: self.poked)
        return await kid


async def test_a_reset_point_with_a_running_child_is_refused_and_one_before_it_is_not(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Parent, Kid]):
        handle = await env.client.start_workflow(Parent.run, id="parent", task_queue="q")
        await handle.signal(Parent.poke)
        assert await handle.query(Parent.was_poked)  # once the poke's task has run
        with pytest.raises(
            ValueError, match=r"child workflows started before it were still running then \('kid'\)"
        ):
            await env.client.get_workflow_handle("parent").reset(reason="child running")
        old_kid = (await env.client.get_workflow_handle("kid").describe()).run_id

        # Before the child started: the old run's child is terminated with it (its parent
        # close policy), and the task run again starts a new one; the poke is reapplied.
        new_run = await env.client.get_workflow_handle("parent").reset(
            reset_type=ResetType.FIRST_WORKFLOW_TASK, reason="before the child"
        )
        old_kid_now = await env.client.get_workflow_handle("kid", run_id=old_kid).describe()
        assert old_kid_now.status == WorkflowExecutionStatus.TERMINATED
        # The new run's first task has run once a query is answered: it started the child.
        assert await env.client.get_workflow_handle("parent").query(Parent.was_poked)
        kid = env.client.get_workflow_handle("kid")
        assert (await kid.describe()).run_id != old_kid
        await kid.signal(Kid.finish)
        assert await handle.result() == f"kid of run {new_run}"


async def test_a_reset_child_reports_to_its_parent_from_the_new_run(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Parent, Kid]):
        handle = await env.client.start_workflow(Parent.run, id="parent", task_queue="q")
        await handle.signal(Parent.poke)
        assert await handle.query(Parent.was_poked)
        parent_run = (await handle.describe()).run_id
        kid = env.client.get_workflow_handle("kid")
        old_kid = (await kid.describe()).run_id
        new_kid = await kid.reset(reason="the kid again")
        # The parent does not hear of the old run's end: the new run takes its place.
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        await kid.signal(Kid.finish)
        assert await handle.result() == f"kid of run {parent_run}"
        assert (await kid.describe()).run_id == new_kid != old_kid


@workflow.defn
class Relay:
    def __init__(self) -> None:
        self.items: list[str] = []

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.query
    def seen(self) -> list[str]:
        return self.items

    @workflow.run
    async def run(self, hops: int) -> list[str]:
        if hops:
            workflow.continue_as_new(hops - 1)
        await workflow.wait_condition(lambda: "done" in self.items)
        return self.items


async def test_signals_of_the_runs_that_continued_from_the_base_are_reapplied(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[Relay]):
        handle = await env.client.start_workflow(Relay.run, 1, id="relay", task_queue="q")
        latest = env.client.get_workflow_handle("relay")
        # The first run continues as new before the signal, or the signal would reach it
        # (and leave with it: the next run starts with no items).
        first = env.client.get_workflow_handle("relay", run_id=handle.first_execution_run_id)
        while (await first.describe()).status != WorkflowExecutionStatus.CONTINUED_AS_NEW:
            await env.sleep(0)
        await latest.signal(Relay.add, "x")  # to the second run, which the first continued to
        assert await latest.query(Relay.seen) == ["x"]
        second = (await latest.describe()).run_id
        new_run = await latest.reset(
            reset_type=ResetType.LAST_CONTINUED_AS_NEW, reason="from the first run"
        )
        history = await env.client.get_workflow_handle("relay", run_id=new_run).fetch_history()
        reapplied = [
            e.attributes["signal_name"]
            for e in history.events
            if e.event_type is EventType.WORKFLOW_EXECUTION_SIGNALED
        ]
        assert reapplied == ["add"]
        second_now = await env.client.get_workflow_handle("relay", run_id=second).describe()
        assert second_now.status == WorkflowExecutionStatus.TERMINATED
        assert second_now.reset_to is not None and second_now.reset_to.new_run_id == new_run
        # The new run's task ran again and continued as new again (the signal went with it,
        # as it would have at the time); a query answered by the new run waits for that.
        await env.client.get_workflow_handle("relay", run_id=new_run).query(Relay.seen)
        assert (await latest.describe()).run_id != new_run
        await latest.signal(Relay.add, "done")
        assert await handle.result() == ["done"]
