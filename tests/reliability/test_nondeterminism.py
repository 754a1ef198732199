"""Non-determinism (RELIABILITY.md section 7), CI tier: a workflow paused mid-way whose code
then changes in each of the ways replay must catch is not silently diverged: the next
workflow task fails with a non-determinism error (a WorkflowTaskFailed event), the run
stays open, the history recorded before the change is untouched, and once the original
code is back the workflow completes with the right result.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest

from perdure import activity, workflow
from perdure.client import WorkflowExecutionStatus, WorkflowHandle
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker

pytestmark = pytest.mark.perdure_no_replay
QUEUE = "versions"
T = timedelta(seconds=10)


@activity.defn
async def first(x: int) -> int:
    return x + 1


@activity.defn
async def second(x: int) -> int:
    return x * 10


@activity.defn
async def other(x: int) -> int:
    return x - 1


ACTIVITIES = [first, second, other]


class _Base:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn(name="Versioned")
class Original(_Base):
    @workflow.run
    async def run(self, x: int) -> int:
        x = await workflow.execute_activity(first, x, start_to_close_timeout=T)
        await workflow.wait_condition(lambda: self.go)
        return await workflow.execute_activity(second, x, start_to_close_timeout=T)


@workflow.defn(name="Versioned")
class ChangedActivityType(_Base):
    @workflow.run
    async def run(self, x: int) -> int:
        x = await workflow.execute_activity(other, x, start_to_close_timeout=T)
        await workflow.wait_condition(lambda: self.go)
        return await workflow.execute_activity(second, x, start_to_close_timeout=T)


@workflow.defn(name="Versioned")
class AddedActivity(_Base):
    @workflow.run
    async def run(self, x: int) -> int:
        x = await workflow.execute_activity(other, x, start_to_close_timeout=T)
        x = await workflow.execute_activity(first, x, start_to_close_timeout=T)
        await workflow.wait_condition(lambda: self.go)
        return await workflow.execute_activity(second, x, start_to_close_timeout=T)


@workflow.defn(name="Versioned")
class RemovedActivity(_Base):
    @workflow.run
    async def run(self, x: int) -> int:
        await workflow.wait_condition(lambda: self.go)
        return await workflow.execute_activity(second, x, start_to_close_timeout=T)


@workflow.defn(name="Versioned")
class TimerInstead(_Base):
    @workflow.run
    async def run(self, x: int) -> int:
        await workflow.sleep(5)
        await workflow.wait_condition(lambda: self.go)
        return await workflow.execute_activity(second, x, start_to_close_timeout=T)


def _digest(events: list[Any]) -> str:
    return hashlib.sha256(
        json.dumps([e.to_json_dict() for e in events], sort_keys=True, default=str).encode()
    ).hexdigest()


@pytest.mark.parametrize(
    "changed", [ChangedActivityType, AddedActivity, RemovedActivity, TimerInstead]
)
async def test_changed_code_is_caught_on_replay(changed: type) -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        client = env.client
        async with Worker(client, task_queue=QUEUE, workflows=[Original], activities=ACTIVITIES):
            handle: WorkflowHandle[Any, Any] = await client.start_workflow(
                "Versioned", 1, id="v", task_queue=QUEUE
            )
            for _ in range(200):  # until the first activity's result is in history
                events = list((await handle.fetch_history()).events)
                if any(str(e.event_type) == "ActivityTaskCompleted" for e in events):
                    break
                await env.sleep(0.01)
        before = list((await handle.fetch_history()).events)
        # The changed code, on a fresh worker (nothing cached: it replays the history).
        async with Worker(client, task_queue=QUEUE, workflows=[changed], activities=ACTIVITIES):
            await handle.signal("proceed")
            for _ in range(200):
                events = list((await handle.fetch_history()).events)
                failed = [e for e in events if str(e.event_type) == "WorkflowTaskFailed"]
                if failed:
                    break
                await env.sleep(0.01)
            assert failed, [str(e.event_type) for e in events]
            failure = failed[0].attributes["failure"]
            assert failure["type"] == "NondeterminismError", failure
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        after = list((await handle.fetch_history()).events)
        # What was recorded before the change is untouched; only the failure (and the
        # signal) were added.
        assert _digest(after[: len(before)]) == _digest(before)
        added = {str(e.event_type) for e in after[len(before) :]}
        assert added <= {"WorkflowExecutionSignaled", "WorkflowTaskFailed"}, added
        # The original code back: the workflow completes.
        async with Worker(client, task_queue=QUEUE, workflows=[Original], activities=ACTIVITIES):
            assert await handle.result() == 20
    finally:
        await env.shutdown()
