"""Store fault injection (RELIABILITY.md section 2): faults injected at the store's methods,
including Temporal's ``ExecuteAndTimeout`` (the call commits, then raises), never produce a
second effect or a duplicate event, on SQLite and PostgreSQL.

The workflows run on the real clock, with short leases (an activity attempt a fault made
the worker give up on is run again once its lease runs out). A workflow task whose store call
failed is handed back at once, which the time-skipping clock (standing still while a task is
leased) needs: ``test_dropped_workflow_task_runs_again_on_the_time_skipping_clock``.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from harness import rerun_hint
from harness.auditor import audit, completed_activity_seqs
from harness.faults import FaultPlan, inject
from harness.suite_faults import SuiteFaults
from pgutil import fresh_schema

from perdure import activity, workflow
from perdure._common.backoff import transient
from perdure.client import WorkflowAlreadyStartedError, WorkflowExecutionStatus
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker

pytestmark = [pytest.mark.realtime]

QUEUE = "faults"
STEPS = 3
# Side effects, by (workflow id, step): how many times each really ran.
EFFECTS: collections.Counter[tuple[str, int]] = collections.Counter()


@activity.defn
async def effect(seq: int, value: int) -> int:
    EFFECTS[(activity.info().workflow_id, seq)] += 1
    return value * 2 + seq


def reference(value: int) -> int:
    for seq in range(1, STEPS + 1):
        value = value * 2 + seq
    return value


@workflow.defn
class Effects:
    @workflow.run
    async def run(self, value: int) -> int:
        for seq in range(1, STEPS + 1):
            value = await workflow.execute_activity(
                effect, args=(seq, value), start_to_close_timeout=timedelta(seconds=1)
            )
        return value


@pytest.fixture(params=["sqlite", "postgresql"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    if request.param == "sqlite":
        e = await WorkflowEnvironment.start_local()
        try:
            yield e
        finally:
            await e.shutdown()
        return
    async with fresh_schema() as url:
        e = await WorkflowEnvironment.start_local(url)
        try:
            yield e
        finally:
            await e.shutdown()


async def run_workflows(env: WorkflowEnvironment, plan: FaultPlan, count: int) -> list[str]:
    """Run ``count`` workflows with the faults of ``plan`` injected into the worker's store;
    check results, histories and side effects; return the workflow ids."""
    EFFECTS.clear()
    client = env.client
    inject(client.store, plan)
    ids = [f"faults-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    async with Worker(client, task_queue=QUEUE, workflows=[Effects], activities=[effect]):
        handles = []
        for i, wid in enumerate(ids):
            for _ in range(20):  # the start itself may be refused by an injected fault
                try:
                    handles.append(
                        await client.start_workflow(
                            Effects.run,
                            i,
                            id=wid,
                            task_queue=QUEUE,
                            task_timeout=timedelta(seconds=1),
                        )
                    )
                    break
                except WorkflowAlreadyStartedError:  # committed, then raised: it is there
                    handles.append(client.get_workflow_handle(wid))
                    break
                except Exception as exc:
                    if not transient(exc):
                        raise
        results = [await _result(h) for h in handles]
    plan.rate = 0.0  # the checks read the store without faults
    assert results == [reference(i) for i in range(count)], rerun_hint(plan.seed)
    for wid in ids:
        history = await client.get_workflow_handle(wid).fetch_history()
        events = list(history.events)
        assert audit(wid, events, closed=True) == [], rerun_hint(plan.seed)
        assert completed_activity_seqs(events) == {s: 1 for s in range(1, STEPS + 1)}
        starts = [e for e in events if str(e.event_type) == "WorkflowExecutionStarted"]
        assert len(starts) == 1
    return ids


async def _result(handle: Any) -> Any:
    """The workflow's result; a read the plan failed is read again."""
    while True:
        try:
            return await handle.result()
        except Exception as exc:
            if not transient(exc):
                raise


async def test_commit_then_raise_on_activity_completion(env: WorkflowEnvironment) -> None:
    """Every activity result commits and then 'times out': the workflow goes on, each step
    ran once and is completed once in history."""
    plan = FaultPlan(seed=0, rate=1.0, kinds=("after",), methods=("complete_activity",))
    ids = await run_workflows(env, plan, 2)
    assert plan.injected[("complete_activity", "after")] >= 2 * STEPS
    assert {(wid, s): 1 for wid in ids for s in range(1, STEPS + 1)} == EFFECTS


async def test_commit_then_raise_on_workflow_task_and_start(env: WorkflowEnvironment) -> None:
    plan = FaultPlan(
        seed=0,
        rate=1.0,
        kinds=("after",),
        methods=("complete_workflow_task", "start_workflow"),
        limit=4,
    )
    ids = await run_workflows(env, plan, 2)
    assert plan.total == 4
    assert {(wid, s): 1 for wid in ids for s in range(1, STEPS + 1)} == EFFECTS


async def test_activity_result_refused_once_is_recorded_again(env: WorkflowEnvironment) -> None:
    """A result the database refused (the call failed before reaching it) is recorded again:
    the activity does not run a second time after its lease runs out."""
    plan = FaultPlan(seed=0, rate=1.0, kinds=("before",), methods=("complete_activity",), limit=2)
    ids = await run_workflows(env, plan, 2)
    assert plan.total == 2
    assert {(wid, s): 1 for wid in ids for s in range(1, STEPS + 1)} == EFFECTS


async def test_seeded_faults_everywhere(env: WorkflowEnvironment, seed: int) -> None:
    """15% of the store calls fail, before or after committing or as a busy database."""
    plan = FaultPlan(seed=seed, rate=0.15, kinds=("before", "after", "busy", "latency"))
    ids = await run_workflows(env, plan, 6)
    assert plan.total > 0, rerun_hint(seed)
    # At least once each; more only where a fault kept a result from being recorded.
    assert set(EFFECTS) == {(wid, s) for wid in ids for s in range(1, STEPS + 1)}


@workflow.defn
class Sleeper:
    @workflow.run
    async def run(self, value: int) -> int:
        await workflow.sleep(3600)
        value = await workflow.execute_activity(
            effect, args=(1, value), start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.sleep(3600)
        return value


@pytest.mark.parametrize("kind", ["before", "after", "busy"])
async def test_dropped_workflow_task_runs_again_on_the_time_skipping_clock(kind: str) -> None:
    """Regression: a workflow task whose store call failed was dropped and left leased until
    its lease ran out, which the time-skipping clock (standing still while a task is leased)
    never lets happen: the workflow hung. And a busy database failed the task as if the
    workflow's code had (a WorkflowTaskFailed event). The task is handed back now: it runs
    again at once, and history shows no failure."""
    plan = FaultPlan(
        seed=0,
        rate=1.0,
        kinds=(kind,),
        methods=("complete_workflow_task", "get_history"),
        limit=3,
    )
    EFFECTS.clear()
    async with await WorkflowEnvironment.start_time_skipping() as env:
        inject(env.client.store, plan)
        async with Worker(env.client, task_queue=QUEUE, workflows=[Sleeper], activities=[effect]):
            handle = await env.client.start_workflow(Sleeper.run, 5, id="s", task_queue=QUEUE)
            # Without the hand-back this never returns (the pytest timeout ends it).
            assert await asyncio.wait_for(handle.result(), 30) == 11
        plan.rate = 0.0
        events = list((await handle.fetch_history()).events)
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    assert plan.total == 3
    assert audit("s", events, closed=True) == []
    assert "WorkflowTaskFailed" not in [str(e.event_type) for e in events]
    assert EFFECTS == {("s", 1): 1}


async def test_suite_plan_faults_only_the_workers_calls(tmp_path: Any, seed: int) -> None:
    """The plan of ``pytest --store-faults`` (harness/suite_faults.py): a store opened by
    ``open_store`` is wrapped through the open hook; 30% of the workers' calls fail, and not
    one call of the client's or the test's does (none of them retries here)."""
    faults = SuiteFaults(seed, 0.3, str(tmp_path / "faults.txt"))
    try:
        faults.start("test_suite_plan_faults_only_the_workers_calls")
        EFFECTS.clear()
        async with await WorkflowEnvironment.start_time_skipping() as env:
            client = env.client
            async with Worker(client, task_queue=QUEUE, workflows=[Sleeper], activities=[effect]):
                handles = [
                    await client.start_workflow(Sleeper.run, i, id=f"s{i}", task_queue=QUEUE)
                    for i in range(4)
                ]
                assert [await h.result() for h in handles] == [2 * i + 1 for i in range(4)]
                for h in handles:
                    events = list((await h.fetch_history()).events)
                    assert audit(h.id, events, closed=True) == [], rerun_hint(seed)
    finally:
        faults.remove()
    assert faults.plan.total > 0, rerun_hint(seed)
    assert set(EFFECTS) == {(f"s{i}", 1) for i in range(4)}
    assert not faults.plan.calls.keys() & {"start_workflow", "describe", "wait_closed"}
