"""examples/cicd_pipeline.py: a pipeline deployed after its approval; a failing check that
cancels the others; a failed build, a rejection and an approval that never comes each stop
it with a report; and the script run as a user runs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from example_support import EXAMPLES, load_example, run_example

from perdure import ApplicationError, Client, Worker, WorkflowHandle, activity
from perdure.testing import WorkflowEnvironment
from perdure.worker import Replayer

SCRIPT = EXAMPLES / "cicd_pipeline.py"
WAIT = 10.0  # real seconds: a bound on waiting for something to happen, never a delay

ex = load_example(SCRIPT)
STAGES = ["build", *ex.CHECKS, "deploy-staging", "approval", "deploy-production"]


@asynccontextmanager
async def pipeline_worker(*activities: Any) -> AsyncIterator[Client]:
    async with await WorkflowEnvironment.start_time_skipping() as env:
        async with Worker(
            env.client,
            task_queue=ex.TASK_QUEUE,
            workflows=[ex.Pipeline],
            activities=list(activities) or [ex.build, ex.run_check, ex.deploy],
        ):
            yield env.client
        replayer = Replayer(workflows=[ex.Pipeline])
        async for history in env.client.list_workflows().map_histories():
            await replayer.replay_workflow(history)


def table(report: Any) -> list[tuple[str, str]]:
    return [(s.stage, s.status) for s in report.stages]


async def start(client: Client, request: Any) -> WorkflowHandle[Any]:
    return await client.start_workflow(
        ex.Pipeline.run, request, id=f"pipeline-{request.commit}", task_queue=ex.TASK_QUEUE
    )


async def wait_for_approval_step(handle: WorkflowHandle[Any]) -> None:
    """Poll the progress query (a client has no event to wait on) until approval waits."""
    for _ in range(int(WAIT / 0.01)):
        if any(s.status == "waiting" for s in await handle.query(ex.Pipeline.progress)):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the pipeline never reached its approval step")


async def test_a_green_pipeline_is_deployed_once_approved() -> None:
    async with pipeline_worker() as client:
        handle = await start(client, ex.PipelineRequest("c1"))
        await wait_for_approval_step(handle)
        progress = await handle.query(ex.Pipeline.progress)
        assert [s.stage for s in progress][-2:] == ["deploy-staging", "approval"]
        await handle.signal(ex.Pipeline.approve, "alice")
        report = await handle.result()

    assert report.outcome == "deployed"
    assert sorted(table(report)) == sorted(
        [(s, "passed") for s in STAGES if s != "approval"] + [("approval", "approved")]
    )
    details = {s.stage: s.detail for s in report.stages}
    assert details["build"] == "registry.local/shop:c1"
    assert details["lint"] == "no findings"
    assert details["approval"] == "by alice"
    assert [s.stage for s in report.stages][-3:] == [
        "deploy-staging",
        "approval",
        "deploy-production",
    ]


CHECKS_SEEN: list[str] = []
CANCELLED: list[str] = []
ALL_STARTED = asyncio.Event()


@activity.defn(name="run_check")
async def failing_or_endless_check(job: ex.Job) -> str:  # type: ignore[name-defined]
    """The failing check fails once all have started; the others run until cancelled."""
    CHECKS_SEEN.append(job.stage)
    if len(CHECKS_SEEN) == len(ex.CHECKS):
        ALL_STARTED.set()
    if job.fail:
        await asyncio.wait_for(ALL_STARTED.wait(), WAIT)
        raise ApplicationError("2 critical vulnerabilities", type="Vulnerable", non_retryable=True)
    activity.heartbeat()  # cancellation is learned through heartbeats
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        CANCELLED.append(job.stage)
        raise
    return "never"


async def test_a_failing_check_cancels_the_others_and_stops_the_pipeline() -> None:
    CHECKS_SEEN.clear()
    CANCELLED.clear()
    ALL_STARTED.clear()
    async with pipeline_worker(ex.build, failing_or_endless_check, ex.deploy) as client:
        handle = await start(client, ex.PipelineRequest("c2", fail=["security-scan"]))
        report = await handle.result()

    assert report.outcome == "stopped at security-scan"
    assert table(report) == [
        ("build", "passed"),
        ("unit-tests", "cancelled"),
        ("lint", "cancelled"),
        ("security-scan", "failed"),
        ("deploy-staging", "skipped"),
        ("approval", "skipped"),
        ("deploy-production", "skipped"),
    ]
    assert report.stages[3].detail == "2 critical vulnerabilities"
    # The pipeline waited until the running checks had really stopped.
    assert sorted(CANCELLED) == ["lint", "unit-tests"]


async def test_a_failed_build_stops_everything() -> None:
    async with pipeline_worker() as client:
        report = await (await start(client, ex.PipelineRequest("c3", fail=["build"]))).result()

    assert report.outcome == "stopped at build"
    assert table(report) == [("build", "failed")] + [(s, "skipped") for s in STAGES[1:]]
    assert report.stages[0].detail.startswith("compilation failed")


async def test_a_rejection_stops_before_production() -> None:
    async with pipeline_worker() as client:
        handle = await start(client, ex.PipelineRequest("c4"))
        await wait_for_approval_step(handle)
        await handle.signal(ex.Pipeline.reject, ex.Rejection("bob", "release freeze"))
        report = await handle.result()

    assert report.outcome == "stopped at approval"
    assert table(report)[-2:] == [("approval", "rejected"), ("deploy-production", "skipped")]
    assert report.stages[-2].detail == "bob: release freeze"


async def test_an_approval_that_never_comes_times_out_and_auto_approve_needs_none() -> None:
    async with pipeline_worker() as client:
        waited = await (await start(client, ex.PipelineRequest("c5"))).result()  # a day passes
        request = ex.PipelineRequest("c6", flaky=["lint"], auto_approve=True)
        auto = await (await start(client, request)).result()

    assert waited.outcome == "stopped at approval"
    assert table(waited)[-2:] == [("approval", "timed out"), ("deploy-production", "skipped")]
    assert auto.outcome == "deployed"
    assert ("approval", "approved") in table(auto)
    details = {s.stage: s.detail for s in auto.stages}
    assert details["approval"] == "auto-approve"
    assert details["lint"] == "no findings (attempt 2)"  # its hiccup was retried


@pytest.mark.realtime
def test_script_runs(tmp_path: Path) -> None:
    out = run_example(SCRIPT, tmp_path / "ci.db", "--work-seconds", "0.2")
    assert "release manager alice approves pipeline-a1b2c3d" in out
    assert "a1b2c3d  security-scan     hiccup: registry timed out (will retry)" in out
    assert "Pipeline a1b2c3d: deployed" in out
    assert "Pipeline e4f5a6b: stopped at security-scan" in out
    assert "e4f5a6b  unit-tests        cancelled: the pipeline stopped" in out
    assert "  security-scan      failed     2 critical vulnerabilities (CVE-2024-3094, ...)" in out
    assert "  deploy-production  skipped" in out
