"""``describe()`` lists what an open workflow waits on: its pending activities (running,
backing off before a retry, cancel requested) and children, with Temporal's field names."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from perdure import activity, workflow
from perdure.client import (
    PendingActivityState,
    WorkflowExecutionDescription,
    WorkflowFailureError,
    WorkflowHandle,
)
from perdure.common import RetryPolicy
from perdure.exceptions import ApplicationError, CancelledError
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker
from perdure.workflow import ActivityCancellationType, ParentClosePolicy

WAIT = 5.0  # real seconds: an upper bound on waiting for an event, never a delay


@dataclass
class Gate:
    """Holds an activity until the test has looked (same process)."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    release_sync: threading.Event = field(default_factory=threading.Event)


GATES: dict[str, Gate] = {}


@activity.defn
async def reports_progress(step: int) -> str:
    activity.heartbeat("halfway", step)
    if activity.info().attempt == 1 and step == 0:
        raise ApplicationError("boom", type="Boom")
    await asyncio.wait_for(GATES[activity.info().workflow_id].release.wait(), WAIT)
    return "done"


@activity.defn
def waits_for_release() -> str:
    activity.heartbeat()  # how a sync activity learns of cancellation
    gate = GATES[activity.info().workflow_id]
    if not activity.wait_for_cancelled_sync(WAIT):
        return "not cancelled"
    gate.release_sync.wait(WAIT)
    raise CancelledError("stopped on request")


@workflow.defn
class Progress:
    @workflow.run
    async def run(self, step: int) -> str:
        return await workflow.execute_activity(
            reports_progress,
            step,
            activity_id="progress",
            schedule_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(minutes=10), maximum_attempts=3),
        )


@workflow.defn
class WaitsForItsActivity:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            waits_for_release,
            start_to_close_timeout=timedelta(minutes=1),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )


@workflow.defn
class Child:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "child done"

    @workflow.signal
    def finish(self) -> None:
        self.done = True


@workflow.defn
class Parent:
    @workflow.run
    async def run(self) -> str:
        return str(
            await workflow.execute_child_workflow(
                Child.run, id="the-child", parent_close_policy=ParentClosePolicy.ABANDON
            )
        )


def worker(env: WorkflowEnvironment) -> Worker:
    return Worker(
        env.client,
        task_queue="q",
        workflows=[Progress, WaitsForItsActivity, Parent, Child],
        activities=[reports_progress, waits_for_release],
    )


async def described_once(
    handle: WorkflowHandle[Any], ready: Callable[[WorkflowExecutionDescription], bool]
) -> WorkflowExecutionDescription:
    async def poll() -> WorkflowExecutionDescription:
        while True:
            desc = await handle.describe()
            if ready(desc):
                return desc
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(poll(), WAIT)


def close_to(a: datetime | None, b: datetime) -> bool:
    return a is not None and abs(a - b) < timedelta(milliseconds=1)


async def test_a_running_activity_is_started_with_its_last_heartbeat(
    env: WorkflowEnvironment,
) -> None:
    gate = GATES["running"] = Gate()
    async with worker(env) as w:
        handle = await env.client.start_workflow(Progress.run, 1, id="running", task_queue="q")
        desc = await described_once(
            handle,
            lambda d: bool(d.pending_activities and d.pending_activities[0].heartbeat_details),
        )
        now = await env.get_current_time()
        [info] = desc.pending_activities
        assert desc.raw_description.pending_activities == desc.pending_activities
        assert info.activity_type.name == "reports_progress"
        assert info.activity_id == "progress"
        assert info.state is PendingActivityState.STARTED
        assert info.attempt == 1
        assert info.maximum_attempts == 3
        assert info.heartbeat_details == ("halfway", 1)
        assert close_to(info.last_heartbeat_time, now)
        assert close_to(info.last_started_time, now)
        assert close_to(info.expiration_time, info.scheduled_time + timedelta(hours=1))
        assert info.last_failure is None
        assert info.next_attempt_schedule_time is None
        assert info.last_worker_identity == w.identity
        assert desc.pending_children == ()
        gate.release.set()
        assert await handle.result() == "done"
    # A closed workflow waits on nothing.
    closed = await handle.describe()
    assert closed.pending_activities == closed.raw_description.pending_activities == ()


async def test_an_activity_waiting_for_its_retry_shows_why_and_when(
    env: WorkflowEnvironment,
) -> None:
    gate = GATES["retrying"] = Gate()
    async with worker(env) as w:
        handle = await env.client.start_workflow(Progress.run, 0, id="retrying", task_queue="q")
        desc = await described_once(
            handle, lambda d: bool(d.pending_activities and d.pending_activities[0].attempt == 2)
        )
        now = await env.get_current_time()
        [info] = desc.pending_activities
        assert info.state is PendingActivityState.SCHEDULED
        assert isinstance(info.last_failure, ApplicationError)
        assert (info.last_failure.message, info.last_failure.type) == ("boom", "Boom")
        assert close_to(info.next_attempt_schedule_time, now + timedelta(minutes=10))
        assert info.scheduled_time == info.next_attempt_schedule_time
        # The failed attempt: when it started, who ran it, what it reported.
        assert close_to(info.last_started_time, now)
        assert info.last_worker_identity == w.identity
        assert info.heartbeat_details == ("halfway", 0)
        gate.release.set()
        assert await handle.result() == "done"  # the retry, ten (virtual) minutes later


async def test_an_activity_asked_to_cancel_is_cancel_requested(env: WorkflowEnvironment) -> None:
    gate = GATES["cancelling"] = Gate()
    async with worker(env):
        handle = await env.client.start_workflow(
            WaitsForItsActivity.run, id="cancelling", task_queue="q"
        )
        await described_once(
            handle,
            lambda d: bool(
                d.pending_activities
                and d.pending_activities[0].state is PendingActivityState.STARTED
            ),
        )
        await handle.cancel()
        desc = await described_once(
            handle,
            lambda d: d.pending_activities[0].state is PendingActivityState.CANCEL_REQUESTED,
        )
        [info] = desc.pending_activities
        assert info.activity_type.name == "waits_for_release"
        # Its one heartbeat is on record, though it has no heartbeat timeout.
        assert close_to(info.last_heartbeat_time, await env.get_current_time())
        gate.release_sync.set()
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
    assert isinstance(caught.value.cause, CancelledError)
    assert (await handle.describe()).pending_activities == ()


async def test_a_running_child_is_pending(env: WorkflowEnvironment) -> None:
    async with worker(env):
        handle = await env.client.start_workflow(Parent.run, id="parent", task_queue="q")
        desc = await described_once(handle, lambda d: bool(d.pending_children))
        [child] = desc.raw_description.pending_children
        assert desc.pending_children == (child,)
        assert (child.workflow_id, child.workflow_type_name) == ("the-child", "Child")
        child_handle = env.client.get_workflow_handle("the-child")
        assert child.run_id == (await child_handle.describe()).run_id
        assert child.parent_close_policy is ParentClosePolicy.ABANDON
        history = await handle.fetch_history()
        [initiated] = [
            e.event_id
            for e in history.events
            if e.event_type == "StartChildWorkflowExecutionInitiated"
        ]
        assert child.initiated_id == initiated
        assert desc.pending_activities == ()
        await child_handle.signal(Child.finish)
        assert await handle.result() == "child done"
    assert (await handle.describe()).pending_children == ()
