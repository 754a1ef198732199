"""examples/fan_out.py: totals and per-item failures, the concurrency bound, a whole batch
failing without failing the job, and the script run as a user runs it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from example_support import EXAMPLES, load_example, run_example

from perdure import Worker, WorkflowExecutionStatus, activity
from perdure.testing import WorkflowEnvironment

SCRIPT = EXAMPLES / "fan_out.py"

ex = load_example(SCRIPT)


async def test_totals_failures_and_concurrency_bound() -> None:
    items = [f"img-{i:02d}.png" for i in range(50)]
    bad = {3: "doc-03.pdf", 17: "corrupt-17.jpg", 41: "notes-41.txt"}
    for i, name in bad.items():
        items[i] = name
    items[22] = "img-22-flaky.png"  # fails once, then succeeds on retry
    job = ex.FanOutJob("job-1", items, batch_size=7, max_concurrent_batches=3)

    async with (
        await WorkflowEnvironment.start_time_skipping() as env,
        Worker(
            env.client,
            task_queue=ex.TASK_QUEUE,
            workflows=[ex.FanOutWorkflow, ex.ProcessBatch],
            activities=[ex.make_thumbnail],
        ),
    ):
        report = await env.client.execute_workflow(
            ex.FanOutWorkflow.run, job, id="job-1", task_queue=ex.TASK_QUEUE
        )
        children = [
            wf
            async for wf in env.client.list_workflows(
                "WorkflowType = 'ProcessBatch' AND WorkflowId STARTS_WITH 'job-1-batch-'"
            )
        ]

    assert report.total_items == 50
    assert report.batches == 8  # 7 batches of 7, and one of 1
    assert report.peak_concurrent_batches == 3
    assert len(report.outputs) == 47
    assert report.outputs["img-22-flaky.png"] == "thumbs/img-22-flaky.png"
    assert report.outputs["img-00.png"] == "thumbs/img-00.png"
    failed = {(f.item, f.batch, f.reason) for f in report.failures}
    assert failed == {
        ("doc-03.pdf", 0, "unsupported format: doc-03.pdf"),
        ("corrupt-17.jpg", 2, "corrupt image data"),
        ("notes-41.txt", 5, "unsupported format: notes-41.txt"),
    }
    assert sorted(c.id for c in children) == [f"job-1-batch-{i:02d}" for i in range(8)]
    assert {c.status for c in children} == {WorkflowExecutionStatus.COMPLETED}


class Gate:
    """Holds every item's activity until released, so the test can look at the job while
    its batches are in flight."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.changed = asyncio.Event()
        self.release = asyncio.Event()

    async def wait_started(self, count: int) -> None:
        while len(self.started) < count:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), timeout=10)


GATE = Gate()


@activity.defn(name="make_thumbnail")
async def gated_thumbnail(task: ex.ItemTask) -> str:  # type: ignore[name-defined]
    GATE.started.append(task.item)
    GATE.changed.set()
    await GATE.release.wait()
    return f"thumbs/{task.item}"


async def test_a_failed_batch_is_reported_and_the_job_goes_on() -> None:
    global GATE
    GATE = Gate()
    items = [f"img-{i:02d}.png" for i in range(12)]
    job = ex.FanOutJob("job-2", items, batch_size=2, max_concurrent_batches=2)
    async with (
        await WorkflowEnvironment.start_time_skipping() as env,
        Worker(
            env.client,
            task_queue=ex.TASK_QUEUE,
            workflows=[ex.FanOutWorkflow, ex.ProcessBatch],
            activities=[gated_thumbnail],
        ),
    ):
        client = env.client
        handle = await client.start_workflow(
            ex.FanOutWorkflow.run, job, id="job-2", task_queue=ex.TASK_QUEUE
        )
        await GATE.wait_started(4)  # two batches of two items each are in flight

        # The bound holds: two children running, the four others waiting their turn.
        running = await client.count_workflows(
            "WorkflowType = 'ProcessBatch' AND ExecutionStatus = 'Running'"
        )
        assert running.count == 2
        assert await handle.query(ex.FanOutWorkflow.progress) == {
            "batches": 6,
            "done": 0,
            "running": 2,
        }
        assert sorted(GATE.started) == items[:4]

        # A whole batch fails: the parent records its items as failed and carries on.
        await client.get_workflow_handle("job-2-batch-01").terminate("operator stopped it")
        GATE.release.set()
        report = await handle.result()

    assert report.batches == 6
    assert report.peak_concurrent_batches == 2
    assert sorted(report.outputs) == items[:2] + items[4:]
    assert [(f.item, f.batch) for f in report.failures] == [(items[2], 1), (items[3], 1)]
    assert all(f.reason.startswith("batch failed: TerminatedError") for f in report.failures)


@pytest.mark.realtime
def test_script_runs(tmp_path: Path) -> None:
    out = run_example(SCRIPT, tmp_path / "fan-out.db")
    assert "photo-07-flaky.jpg     attempt 1  FAILED: storage timeout (will retry)" in out
    assert "photo-07-flaky.jpg     attempt 2  ok" in out
    assert (
        "Report for thumbnails-job: 16 items, 14 thumbnails made, 2 failed; "
        "4 batches, at most 2 at a time"
    ) in out
    assert "FAILED  batch 0  scan-03.pdf            unsupported format: scan-03.pdf" in out
    assert "FAILED  batch 2  corrupt-10.jpg         corrupt image data" in out
