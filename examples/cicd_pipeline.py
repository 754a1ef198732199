"""A CI/CD pipeline: build, then unit tests, lint and a security scan in parallel, then a
staging deploy, an approval, and the production deploy.

Run it::

    pip install -e .
    python examples/cicd_pipeline.py                        # uses ./perdure-cicd.db
    python examples/cicd_pipeline.py --fail lint            # choose the stage that fails
    python examples/cicd_pipeline.py --auto-approve         # no approval step
    python examples/cicd_pipeline.py --reset                # forget earlier runs

Each pipeline run is a workflow, one per commit::

    build ──┬── unit-tests ──┐
            ├── lint ────────┼── deploy-staging ── approval ── deploy-production
            └── security-scan┘

The three checks run at once with ``perdure.patterns.map_activity`` and ``fail_fast=True``:
the first check to fail stops the pipeline, and the checks still running are cancelled (they
learn it through their heartbeats, and the pipeline waits until they have stopped) so no
runner keeps working for a pipeline that is over. A failed build or deploy stops it too.
Every stop is reported: which stage failed and why, and what became of the others.

A check that fails because the code is wrong (a failing test, a vulnerability) raises a
non-retryable ``ApplicationError``: running it again would not help. An infrastructure
hiccup (the scanner's registry timing out) is a plain exception, and perdure retries it.

After staging, the pipeline waits for an ``approve`` or ``reject`` signal, at most
``approval_timeout`` (a durable timer: a day in real use, seconds in the demo); with
``auto_approve`` it goes straight on. ``progress`` is a query that shows the stages so far.

The demo runs two pipelines at once: commit ``a1b2c3d`` goes all the way (the demo approves
it once it reaches the approval step), and commit ``e4f5a6b`` has a security scan that
fails, which cancels the other checks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from perdure import ApplicationError, Client, RetryPolicy, Worker, activity, workflow
from perdure.client import WorkflowHandle, WorkflowIDConflictPolicy
from perdure.exceptions import ActivityError
from perdure.patterns import ItemStatus, map_activity
from perdure.workflow import ActivityCancellationType

TASK_QUEUE = "ci"
CHECKS = ["unit-tests", "lint", "security-scan"]
STARTED_AT = time.monotonic()


def say(line: str) -> None:
    """Print one narrative line, stamped with the seconds since this process started."""
    print(f"[{time.monotonic() - STARTED_AT:5.1f}s] {line}", flush=True)


# ---------------------------------------------------------------------------------------------
# Data (stored as JSON: plain dataclasses).
# ---------------------------------------------------------------------------------------------


@dataclass
class PipelineRequest:
    commit: str
    service: str = "shop"
    fail: list[str] = field(default_factory=list)  # stages that fail (the demo's injection)
    flaky: list[str] = field(default_factory=list)  # stages whose first attempt hiccups
    auto_approve: bool = False
    approval_timeout_seconds: float = 24 * 3600.0
    work_seconds: float = 0.0  # how long each stage takes (to make the demo watchable)


@dataclass
class Artifact:
    commit: str
    image: str


@dataclass
class Job:
    """One stage's work, as its activity receives it."""

    stage: str
    commit: str
    image: str
    fail: bool
    flaky: bool
    work_seconds: float


@dataclass
class Rejection:
    by: str
    reason: str


@dataclass
class StageReport:
    stage: str
    status: str  # passed, failed, cancelled, skipped, approved, rejected, timed out
    detail: str = ""


@dataclass
class PipelineReport:
    commit: str
    outcome: str  # "deployed", or "stopped at <stage>"
    stages: list[StageReport]


# ---------------------------------------------------------------------------------------------
# The activities. A real pipeline would call a build farm, test runners and a deploy tool.
# ---------------------------------------------------------------------------------------------


async def work(job: Job, share: float = 1.0) -> None:
    """Take ``share`` of ``work_seconds``, heartbeating, so a cancellation reaches us soon."""
    steps = 10
    for _ in range(steps):
        await asyncio.sleep(job.work_seconds * share / steps)
        activity.heartbeat()


def failure(job: Job) -> ApplicationError:
    reasons = {
        "build": ("compilation failed: src/cart.py:41: undefined name 'totl'", "BuildFailed"),
        "unit-tests": ("3 of 812 tests failed (test_cart_total, ...)", "TestsFailed"),
        "lint": ("14 lint errors (E501 line too long, ...)", "LintFailed"),
        "security-scan": ("2 critical vulnerabilities (CVE-2024-3094, ...)", "Vulnerable"),
        "deploy-staging": ("staging health check failed after rollout", "DeployFailed"),
        "deploy-production": ("production health check failed after rollout", "DeployFailed"),
    }
    message, kind = reasons[job.stage]
    return ApplicationError(message, type=kind, non_retryable=True)


@activity.defn
async def build(job: Job) -> Artifact:
    say(f"{job.commit}  {'build':<17} started")
    await work(job)
    if job.fail:
        say(f"{job.commit}  {'build':<17} FAILED")
        raise failure(job)
    image = f"registry.local/{job.image}:{job.commit}"
    say(f"{job.commit}  {'build':<17} ok -> {image}")
    return Artifact(job.commit, image)


PASSED = {
    "unit-tests": "812 tests passed",
    "lint": "no findings",
    "security-scan": "no known vulnerabilities",
}


@activity.defn
async def run_check(job: Job) -> str:
    attempt = activity.info().attempt
    say(f"{job.commit}  {job.stage:<17} started (attempt {attempt})")
    try:
        if job.flaky and attempt == 1:
            await work(job, 0.3)
            say(f"{job.commit}  {job.stage:<17} hiccup: registry timed out (will retry)")
            raise ConnectionError("registry timed out")  # a plain exception: retried
        if job.fail:
            await work(job, 0.5)
            say(f"{job.commit}  {job.stage:<17} FAILED")
            raise failure(job)
        await work(job)
    except asyncio.CancelledError:
        say(f"{job.commit}  {job.stage:<17} cancelled: the pipeline stopped")
        raise
    say(f"{job.commit}  {job.stage:<17} passed")
    found = PASSED[job.stage]
    return found if attempt == 1 else f"{found} (attempt {attempt})"


@activity.defn
async def deploy(job: Job) -> str:
    say(f"{job.commit}  {job.stage:<17} rolling out {job.image}")
    await work(job)
    if job.fail:
        say(f"{job.commit}  {job.stage:<17} FAILED")
        raise failure(job)
    where = job.stage.removeprefix("deploy-")
    say(f"{job.commit}  {job.stage:<17} ok: live on {where}")
    return f"live on {where}"


STAGE_TIMEOUT = timedelta(minutes=30)
HEARTBEAT = timedelta(seconds=10)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.2), maximum_attempts=3)


# ---------------------------------------------------------------------------------------------
# The workflow.
# ---------------------------------------------------------------------------------------------


class PipelineStopped(Exception):
    """A stage did not pass: the pipeline reports and ends (caught in run, never raised)."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


@workflow.defn
class Pipeline:
    @workflow.init
    def __init__(self, request: PipelineRequest) -> None:
        self.request = request
        self.stages: list[StageReport] = []
        self.decision: bool | str | None = None  # True, or the rejection's text
        self.approver = ""
        self.awaiting_approval = False

    def job(self, stage: str, image: str = "") -> Job:
        r = self.request
        return Job(stage, r.commit, image or r.service, stage in r.fail, stage in r.flaky,
                   r.work_seconds)  # fmt: skip

    async def step(self, stage: str, fn: Callable[[Job], Awaitable[Any]], image: str = "") -> Any:
        """Run one single-activity stage; a failure is reported and stops the pipeline."""
        try:
            result = await workflow.execute_activity(
                fn,
                self.job(stage, image),
                start_to_close_timeout=STAGE_TIMEOUT,
                heartbeat_timeout=HEARTBEAT,
                retry_policy=RETRY,
            )
        except ActivityError as err:
            self.stages.append(StageReport(stage, "failed", str(err.cause)))
            raise PipelineStopped(stage) from err
        detail = result.image if isinstance(result, Artifact) else str(result)
        self.stages.append(StageReport(stage, "passed", detail))
        return result

    async def checks(self, artifact: Artifact) -> None:
        """The checks, at once; the first to fail cancels the others."""
        result = await map_activity(
            run_check,
            [self.job(check, artifact.image) for check in CHECKS],
            fail_fast=True,
            start_to_close_timeout=STAGE_TIMEOUT,
            heartbeat_timeout=HEARTBEAT,
            retry_policy=RETRY,
            # Wait until a cancelled check has really stopped: its runner is free again.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        for check, outcome in zip(CHECKS, result.outcomes, strict=True):
            if outcome.status is ItemStatus.COMPLETED:
                self.stages.append(StageReport(check, "passed", str(outcome.value)))
            elif outcome.status is ItemStatus.FAILED:
                cause = outcome.error.cause if isinstance(outcome.error, ActivityError) else None
                self.stages.append(StageReport(check, "failed", str(cause or outcome.error)))
            else:
                self.stages.append(StageReport(check, "cancelled", "another check failed"))
        if not result.ok:
            raise PipelineStopped(CHECKS[result.failures[0].index])

    async def approval(self) -> None:
        if self.request.auto_approve:
            self.stages.append(StageReport("approval", "approved", "auto-approve"))
            return
        self.awaiting_approval = True
        try:
            await workflow.wait_condition(
                lambda: self.decision is not None,
                timeout=timedelta(seconds=self.request.approval_timeout_seconds),
            )
        except TimeoutError:
            self.stages.append(StageReport("approval", "timed out", "nobody approved in time"))
            raise PipelineStopped("approval") from None
        finally:
            self.awaiting_approval = False
        if self.decision is not True:
            self.stages.append(StageReport("approval", "rejected", str(self.decision)))
            raise PipelineStopped("approval")
        self.stages.append(StageReport("approval", "approved", f"by {self.approver}"))

    @workflow.run
    async def run(self, request: PipelineRequest) -> PipelineReport:
        try:
            artifact: Artifact = await self.step("build", build)
            await self.checks(artifact)
            await self.step("deploy-staging", deploy, artifact.image)
            await self.approval()
            await self.step("deploy-production", deploy, artifact.image)
        except PipelineStopped as stop:
            done = {s.stage for s in self.stages}
            for stage in ["build", *CHECKS, "deploy-staging", "approval", "deploy-production"]:
                if stage not in done:
                    self.stages.append(StageReport(stage, "skipped"))
            return PipelineReport(request.commit, f"stopped at {stop.stage}", self.stages)
        return PipelineReport(request.commit, "deployed", self.stages)

    @workflow.signal
    def approve(self, by: str) -> None:
        if self.decision is None:
            self.approver = by
            self.decision = True

    @workflow.signal
    def reject(self, rejection: Rejection) -> None:
        if self.decision is None:
            self.decision = f"{rejection.by}: {rejection.reason}"

    @workflow.query
    def progress(self) -> list[StageReport]:
        awaiting = [StageReport("approval", "waiting")] if self.awaiting_approval else []
        return self.stages + awaiting


# ---------------------------------------------------------------------------------------------
# The demo.
# ---------------------------------------------------------------------------------------------


async def approve_when_ready(handle: WorkflowHandle[PipelineReport], by: str) -> None:
    """Play the release manager: approve once the pipeline waits for it."""
    while True:
        stages = await handle.query(Pipeline.progress)
        if any(s.stage == "approval" and s.status == "waiting" for s in stages):
            say(f"release manager {by} approves {handle.id}")
            await handle.signal(Pipeline.approve, by)
            return
        if any(s.status in ("failed", "cancelled") for s in stages):
            return
        await asyncio.sleep(0.1)


def print_report(report: PipelineReport) -> None:
    print(f"\nPipeline {report.commit}: {report.outcome}")
    for s in report.stages:
        print(f"  {s.stage:<18} {s.status:<10} {s.detail}".rstrip())


async def main(db: Path, requests: list[PipelineRequest]) -> int:
    print(f"perdure CI/CD pipeline demo, database {db}\n")
    client = await Client.connect(f"sqlite:///{db}")
    try:
        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[Pipeline],
            activities=[build, run_check, deploy],
        ):
            handles = [
                await client.start_workflow(
                    Pipeline.run,
                    request,
                    id=f"pipeline-{request.commit}",
                    task_queue=TASK_QUEUE,
                    # If the demo was interrupted, pick the pipeline up where it stands.
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                )
                for request in requests
            ]
            approvers = [
                asyncio.create_task(approve_when_ready(h, "alice"))
                for h, r in zip(handles, requests, strict=True)
                if not r.auto_approve
            ]
            reports = [await h.result() for h in handles]
            await asyncio.gather(*approvers)
    finally:
        await client.close()
    for report in reports:
        print_report(report)
    print("\nDone.")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("perdure-cicd.db"),
        help="SQLite file holding the workflows (default: %(default)s)",
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the database first and start from scratch"
    )
    parser.add_argument(
        "--fail",
        default="security-scan",
        help="the stage that fails in the second pipeline (default: %(default)s)",
    )
    parser.add_argument("--auto-approve", action="store_true", help="skip the approval step")
    parser.add_argument(
        "--work-seconds", type=float, default=0.6, help="time per stage (default: %(default)s)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    demo = [
        PipelineRequest(
            "a1b2c3d",
            flaky=["security-scan"],
            auto_approve=args.auto_approve,
            work_seconds=args.work_seconds,
        ),
        PipelineRequest(
            "e4f5a6b",
            fail=[args.fail],
            auto_approve=args.auto_approve,
            work_seconds=args.work_seconds,
        ),
    ]
    sys.exit(asyncio.run(main(args.db, demo)))
