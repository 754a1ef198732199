"""``workflow.logger`` and ``activity.logger``: every record carries the workflow's and
activity's ids as fields and in its message (as Temporal's loggers do), and a workflow's
records are written once, never again when its code is replayed."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from perdure import Worker, activity, workflow
from perdure.testing import WorkflowEnvironment


@activity.defn
async def weigh(parcel: str) -> int:
    activity.logger.info("weighing %s", parcel)
    activity.logger.info("100% weighed")  # no arguments: the message is not formatted
    return len(parcel)


@workflow.defn
class Parcel:  # its id has a "%": the formatted message keeps it
    @workflow.run
    async def run(self, parcel: str) -> int:
        workflow.logger.info("received %s", parcel)
        grams = await workflow.execute_activity(
            weigh, parcel, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.sleep(5)
        workflow.logger.info("weighed %s: %d g", parcel, grams)
        return grams


async def test_records_carry_the_ids_and_replay_writes_none(
    env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="perdure")
    # No cache: every workflow task rebuilds the workflow by replaying what came before.
    async with Worker(
        env.client,
        task_queue="post",
        workflows=[Parcel],
        activities=[weigh],
        max_cached_workflows=0,
    ):
        handle = await env.client.start_workflow(Parcel.run, "box", id="p-1%s", task_queue="post")
        assert await handle.result() == 3
    run_id = handle.result_run_id
    flows = [r for r in caplog.records if r.name == "perdure.workflow"]
    messages = [r.getMessage().split(" ({")[0] for r in flows]
    assert messages == ["received box", "weighed box: 3 g"]  # once each
    for record in flows:
        assert record.__dict__["workflow_id"] == "p-1%s"
        assert record.__dict__["run_id"] == run_id
        assert record.__dict__["workflow_type"] == "Parcel"
        assert record.__dict__["attempt"] == 1
        assert record.__dict__["task_queue"] == "post"
        assert record.__dict__["temporal_workflow"]["workflow_id"] == "p-1%s"  # Temporal's key
        assert f"'run_id': '{run_id}'" in record.getMessage()
    weighing, done = [r for r in caplog.records if r.name == "perdure.activity"]
    assert done.getMessage().startswith("100% weighed ({")
    assert weighing.filename == "test_logging.py"  # the caller's line
    assert weighing.getMessage().startswith("weighing box ({'activity_id': '1'")
    fields = {
        k: weighing.__dict__[k]
        for k in ("activity_id", "activity_type", "attempt", "workflow_id", "run_id")
    }
    assert fields == {
        "activity_id": "1",
        "activity_type": "weigh",
        "attempt": 1,
        "workflow_id": "p-1%s",
        "run_id": run_id,
    }
