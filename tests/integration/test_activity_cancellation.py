"""Cancelling activities: from the workflow (each cancellation type), in sync and async
activities, and by cancelling the workflow itself. Activities learn of cancellation through
their heartbeats, so they heartbeat often (a request to cancel sends the next one at once, in
process). The heartbeat timeout is long: the virtual clock follows real time while a
heartbeating activity runs, and a timeout must not fire here however slow the machine."""

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from perdure import activity, workflow
from perdure.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from perdure.exceptions import ActivityError, CancelledError
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker
from perdure.workflow import ActivityCancellationType

QUEUE = "cancellation"
HEARTBEAT = timedelta(seconds=30)
WAIT = 5.0  # real seconds: an upper bound on waiting for an event, never a delay


@dataclass
class Probe:
    """What one workflow's activity saw, shared with the test (same process)."""

    client: Client
    loop: asyncio.AbstractEventLoop
    started: asyncio.Event = field(default_factory=asyncio.Event)
    resumed: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    resumed_sync: threading.Event = field(default_factory=threading.Event)
    log: list[str] = field(default_factory=list)
    got_cancelled_error: bool = False
    is_cancelled: bool = False
    stage_during_cleanup: str | None = None


PROBES: dict[str, Probe] = {}


def probe() -> Probe:
    return PROBES[activity.info().workflow_id]


@activity.defn
async def heartbeats_until_cancelled(mode: str) -> str:
    p = probe()
    p.started.set()
    try:
        for _ in range(int(WAIT / 0.01)):
            activity.heartbeat()
            await asyncio.sleep(0.01)
        return "never cancelled"
    except asyncio.CancelledError:
        p.got_cancelled_error = True
        p.is_cancelled = activity.is_cancelled()
        if mode == "try-cancel":
            # Cleanup that outlasts the workflow's wait: TRY_CANCEL must not wait for it.
            await asyncio.wait_for(p.resumed.wait(), WAIT)
        elif mode == "wait-cancellation":
            handle = p.client.get_workflow_handle(activity.info().workflow_id)
            p.stage_during_cleanup = await handle.query(CancelsItsActivity.stage)
        p.log.append("cleanup finished")
        raise
    finally:
        p.finished.set()


@activity.defn
async def runs_until_released() -> str:
    p = probe()
    p.started.set()
    try:
        for _ in range(int(WAIT / 0.01)):
            activity.heartbeat()
            p.is_cancelled = p.is_cancelled or activity.is_cancelled()
            if p.resumed.is_set():
                return "finished"
            await asyncio.sleep(0.01)
        return "never released"
    except asyncio.CancelledError:
        p.got_cancelled_error = True
        raise
    finally:
        p.log.append("abandoned activity finished")
        p.finished.set()


@activity.defn
def sync_heartbeats_until_cancelled() -> str:
    p = probe()
    p.loop.call_soon_threadsafe(p.started.set)
    try:
        for _ in range(int(WAIT / 0.01)):
            activity.heartbeat()
            if activity.is_cancelled():
                p.is_cancelled = True
                p.log.append("cleanup finished")
                raise CancelledError("sync activity saw the cancellation")
            time.sleep(0.01)
        return "never cancelled"
    finally:
        p.loop.call_soon_threadsafe(p.finished.set)


@activity.defn
async def mark_resumed() -> None:
    p = probe()
    p.log.append("workflow resumed")
    p.resumed.set()


CANCELLATION_TYPES = {
    "try-cancel": ActivityCancellationType.TRY_CANCEL,
    "wait-cancellation": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    "abandon": ActivityCancellationType.ABANDON,
    "sync": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
}


@workflow.defn
class CancelsItsActivity:
    def __init__(self) -> None:
        self._cancel = False
        self._stage = "starting"

    @workflow.signal
    def cancel_activity(self) -> None:
        self._cancel = True

    @workflow.query
    def stage(self) -> str:
        return self._stage

    @workflow.run
    async def run(self, mode: str) -> str:
        options = {
            "start_to_close_timeout": timedelta(seconds=30),
            "heartbeat_timeout": HEARTBEAT,
            "cancellation_type": CANCELLATION_TYPES[mode],
        }
        if mode == "abandon":
            handle = workflow.start_activity(runs_until_released, **options)
        elif mode == "sync":
            handle = workflow.start_activity(sync_heartbeats_until_cancelled, **options)
        else:
            handle = workflow.start_activity(heartbeats_until_cancelled, mode, **options)
        self._stage = "running"
        await workflow.wait_condition(lambda: self._cancel)
        handle.cancel()
        self._stage = "cancelling"
        try:
            outcome = f"completed: {await handle}"
        except ActivityError as err:
            outcome = f"ActivityError caused by {type(err.cause).__name__}"
        self._stage = "resumed"
        await workflow.execute_activity(mark_resumed, start_to_close_timeout=timedelta(seconds=5))
        return outcome


@workflow.defn
class AwaitsActivity:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            heartbeats_until_cancelled,
            "workflow-cancelled",
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=HEARTBEAT,
        )


def worker(env: WorkflowEnvironment) -> Worker:
    return Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[CancelsItsActivity, AwaitsActivity],
        activities=[
            heartbeats_until_cancelled,
            runs_until_released,
            sync_heartbeats_until_cancelled,
            mark_resumed,
        ],
    )


async def cancel_from_workflow(env: WorkflowEnvironment, mode: str) -> tuple[str, Probe, str]:
    """Start CancelsItsActivity, let its activity start, make the workflow cancel it; return
    the workflow's result once the activity has finished too."""
    workflow_id = f"{mode}-{uuid.uuid4()}"
    p = PROBES[workflow_id] = Probe(client=env.client, loop=asyncio.get_running_loop())
    async with worker(env):
        handle = await env.client.start_workflow(
            CancelsItsActivity.run, mode, id=workflow_id, task_queue=QUEUE
        )
        await asyncio.wait_for(p.started.wait(), WAIT)
        await handle.signal(CancelsItsActivity.cancel_activity)
        result = await handle.result()
        await asyncio.wait_for(p.finished.wait(), WAIT)
    return result, p, workflow_id


async def test_try_cancel_resolves_at_once(env: WorkflowEnvironment) -> None:
    result, p, _ = await cancel_from_workflow(env, "try-cancel")
    assert result == "ActivityError caused by CancelledError"
    assert p.got_cancelled_error
    assert p.is_cancelled
    # The workflow went on while the activity was still cleaning up.
    assert p.log == ["workflow resumed", "cleanup finished"]


async def test_wait_cancellation_completed_waits_for_the_activity(
    env: WorkflowEnvironment,
) -> None:
    result, p, _ = await cancel_from_workflow(env, "wait-cancellation")
    assert result == "ActivityError caused by CancelledError"
    assert p.got_cancelled_error
    assert p.is_cancelled
    assert p.stage_during_cleanup == "cancelling"
    assert p.log == ["cleanup finished", "workflow resumed"]


async def test_abandon_leaves_the_activity_running(env: WorkflowEnvironment) -> None:
    result, p, workflow_id = await cancel_from_workflow(env, "abandon")
    assert result == "ActivityError caused by CancelledError"
    assert p.log == ["workflow resumed", "abandoned activity finished"]
    assert not p.got_cancelled_error
    assert not p.is_cancelled
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    event_types = [e.event_type.value for e in history.events]
    assert "ActivityTaskCancelRequested" not in event_types


async def test_sync_activity_observes_is_cancelled(env: WorkflowEnvironment) -> None:
    result, p, _ = await cancel_from_workflow(env, "sync")
    assert p.is_cancelled
    assert result == "ActivityError caused by CancelledError"
    assert p.log == ["cleanup finished", "workflow resumed"]


async def test_cancelling_the_workflow_cancels_its_activity(env: WorkflowEnvironment) -> None:
    workflow_id = f"cancel-workflow-{uuid.uuid4()}"
    p = PROBES[workflow_id] = Probe(client=env.client, loop=asyncio.get_running_loop())
    async with worker(env):
        handle = await env.client.start_workflow(
            AwaitsActivity.run, id=workflow_id, task_queue=QUEUE
        )
        await asyncio.wait_for(p.started.wait(), WAIT)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as exc_info:
            await handle.result()
        await asyncio.wait_for(p.finished.wait(), WAIT)
    assert isinstance(exc_info.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert p.got_cancelled_error
    assert p.is_cancelled
    assert p.log == ["cleanup finished"]
