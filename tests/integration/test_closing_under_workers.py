"""Closing a client (or a test environment) that workers still use: the worker stops, with
one line of log, and neither spins nor floods the log; a wait on a result fails instead of
hanging. A sync activity heartbeating in a loop (Temporal's ``hello_cancellation`` sample)
learns from its next heartbeat that its worker stopped waiting for it, and nothing is sent
to the closed store or logged.

Each test has a database of its own and shuts its environment down itself: the ``env``
fixture would shut down after the test, when its records are no longer the test's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from perdure import Worker, activity, workflow
from perdure.client import WorkflowExecutionStatus, WorkflowFailureError
from perdure.exceptions import CancelledError, ClientClosedError
from perdure.testing import WorkflowEnvironment

WAIT = 10.0  # real seconds: an upper bound on waiting for an event, never a delay


@pytest.fixture(params=["real-clock", "time-skipping"])
async def open_env(
    request: pytest.FixtureRequest, db_url: str
) -> AsyncIterator[WorkflowEnvironment]:
    if request.param == "real-clock":
        env = await WorkflowEnvironment.start_local(db_url)
    else:
        env = await WorkflowEnvironment.start_time_skipping(url=db_url)
    try:
        yield env
    finally:
        await env.shutdown()  # again, in case the test failed before it did


def troubles(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("perdure")
    ]


# -- a client closed under its running worker ----------------------------------------------------

STARTED: dict[str, asyncio.Event] = {}


@activity.defn
async def note_started() -> None:
    STARTED[activity.info().workflow_id].set()


@workflow.defn
class WaitsForever:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(note_started, start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: False)


@pytest.mark.timeout(30)  # short: before the fix this spun, logging, until killed
async def test_a_worker_stops_when_its_client_is_closed_under_it(
    open_env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    env = open_env
    caplog.set_level(logging.INFO, logger="perdure")
    workflow_id = f"forever-{uuid.uuid4()}"
    STARTED[workflow_id] = asyncio.Event()
    worker = Worker(
        env.client, task_queue="closing", workflows=[WaitsForever], activities=[note_started]
    )
    running = asyncio.create_task(worker.run())
    handle = await env.client.start_workflow(WaitsForever.run, id=workflow_id, task_queue="closing")
    await asyncio.wait_for(STARTED[workflow_id].wait(), WAIT)
    waiting = asyncio.ensure_future(handle.result())
    await asyncio.sleep(0)  # the result is being waited for
    before = len(caplog.records)

    await env.shutdown()

    # The event loop still runs other tasks, and the worker stops by itself.
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        for _ in range(3):
            await asyncio.sleep(0)
            ticks += 1

    await asyncio.wait_for(tick(), WAIT)
    assert ticks == 3
    await asyncio.wait_for(running, WAIT)
    assert not worker.is_running
    with pytest.raises(ClientClosedError, match="closed"):
        await asyncio.wait_for(waiting, WAIT)
    after = [f"{r.levelname} {r.getMessage()}" for r in caplog.records[before:]]
    assert len(after) <= 3, after
    assert [line for line in after if line.startswith("WARNING")] == [
        "WARNING Worker of task queue 'closing' stops: its client was closed while it ran "
        "(shut workers down before closing their client)"
    ], after
    assert not [line for line in after if line.startswith("ERROR")], after
    await worker.shutdown()  # returns at once: it has stopped


# -- Temporal's hello_cancellation: a sync activity heartbeating in a loop --------------------

RELEASE = threading.Event()  # ends the activity if the test fails before it does
ACTIVITY_STARTED = threading.Event()
ACTIVITY_CANCELLED = threading.Event()


@activity.defn
def never_complete_activity() -> None:
    ACTIVITY_STARTED.set()
    try:
        while not RELEASE.is_set():
            activity.heartbeat()
            RELEASE.wait(0.01)
    except CancelledError:
        ACTIVITY_CANCELLED.set()
        raise


@activity.defn
def cleanup_activity() -> None:
    pass


@workflow.defn
class CancellationWorkflow:
    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.execute_activity(
                never_complete_activity,
                start_to_close_timeout=timedelta(seconds=1000),
                heartbeat_timeout=timedelta(seconds=2),
            )
        finally:
            await workflow.execute_activity(
                cleanup_activity, start_to_close_timeout=timedelta(seconds=5)
            )


@pytest.mark.timeout(60)
async def test_a_heartbeating_sync_activity_ends_with_its_worker_and_logs_nothing(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="perdure")
    for event in (RELEASE, ACTIVITY_STARTED, ACTIVITY_CANCELLED):
        event.clear()
    executor = ThreadPoolExecutor(5)
    env = await WorkflowEnvironment.start_time_skipping(url=db_url)
    try:
        async with Worker(
            env.client,
            task_queue="hello-cancellation",
            workflows=[CancellationWorkflow],
            activities=[never_complete_activity, cleanup_activity],
            activity_executor=executor,
        ):
            handle = await env.client.start_workflow(
                CancellationWorkflow.run,
                id=f"cancel-{uuid.uuid4()}",
                task_queue="hello-cancellation",
            )
            assert await asyncio.to_thread(ACTIVITY_STARTED.wait, WAIT)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError) as err:
                await handle.result()
            assert isinstance(err.value.cause, CancelledError)
            assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
        await env.shutdown()
        # The worker stopped waiting for the activity: its next heartbeat tells it so (as
        # Temporal raises CancelledError into its thread), and sends nothing to the store.
        cancelled = await asyncio.to_thread(ACTIVITY_CANCELLED.wait, WAIT)
    finally:
        RELEASE.set()
        await asyncio.to_thread(executor.shutdown)
        await env.shutdown()
    assert troubles(caplog) == []
    assert cancelled
