"""Temporal's ``hello_cancellation`` sample and its test, as they are written: the test waits
until ``describe().raw_description.pending_activities`` shows the activity, then cancels.

(The sample's activity is a sync function that learns of cancellation from an exception
raised by ``heartbeat()``; perdure's sync activities see ``activity.is_cancelled()`` instead,
so the activity here is the async form, which gets ``asyncio.CancelledError`` either way.)
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import NoReturn

import pytest

from perdure import activity, workflow
from perdure.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from perdure.exceptions import CancelledError
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker

cleaned_up: list[str] = []


@activity.defn
async def never_complete_activity() -> NoReturn:
    # All long-running activities should heartbeat. Heartbeat is how
    # cancellation is delivered.
    try:
        while True:
            activity.heartbeat()
            await asyncio.sleep(0.01)
    except asyncio.CancelledError:
        raise


@activity.defn
def cleanup_activity() -> None:
    cleaned_up.append(activity.info().workflow_id)


@workflow.defn
class CancellationWorkflow:
    @workflow.run
    async def run(self) -> None:
        # Execute the forever running activity, and do a cleanup activity when
        # it is complete (on error or cancel)
        try:
            await workflow.execute_activity(
                never_complete_activity,
                start_to_close_timeout=timedelta(seconds=1000),
                # Always set a heartbeat timeout for long-running activities
                heartbeat_timeout=timedelta(seconds=2),
            )
        finally:
            await workflow.execute_activity(
                cleanup_activity, start_to_close_timeout=timedelta(seconds=5)
            )


async def test_cancel_workflow(env: WorkflowEnvironment) -> None:
    cleaned_up.clear()
    client = env.client
    task_queue_name = "hello-cancellation"

    async with Worker(
        client,
        task_queue=task_queue_name,
        workflows=[CancellationWorkflow],
        activities=[cleanup_activity, never_complete_activity],
    ):
        handle = await client.start_workflow(
            CancellationWorkflow.run, id="hello-cancellation", task_queue=task_queue_name
        )

        await asyncio.wait_for(
            wait_for_activity_to_start("never_complete_activity", handle), timeout=5
        )

        await handle.cancel()

        with pytest.raises(WorkflowFailureError) as err:
            await handle.result()
        assert isinstance(err.value.cause, CancelledError)

        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert cleaned_up == ["hello-cancellation"]


async def wait_for_activity_to_start(activity_name: str, handle: WorkflowHandle[None]) -> None:
    while True:
        if await has_activity_started(activity_name, handle):
            return
        await asyncio.sleep(0.01)  # the sample polls every 0.2 s


async def has_activity_started(activity_name: str, handle: WorkflowHandle[None]) -> bool:
    pending_activities = (await handle.describe()).raw_description.pending_activities
    for pending_activity in pending_activities:
        if pending_activity.activity_type.name == activity_name:
            return True

    return False
