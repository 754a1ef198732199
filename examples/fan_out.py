"""Fan-out / fan-in with child workflows: process a list in batches, a few at a time.

Run it::

    pip install -e .
    python examples/fan_out.py            # uses ./perdure-fan-out.db
    python examples/fan_out.py --reset    # forget earlier runs and start fresh

A parent workflow makes thumbnails for a list of images. It splits the list into batches
and starts one *child workflow* per batch, at most ``max_concurrent_batches`` at a time
(``perdure.patterns.map_concurrently``: deterministic, so it replays exactly). Each child
runs one activity per image, in parallel (``perdure.patterns.map_activity``), and returns
what it made and what failed. The parent gathers every child's result into one report.

Failures are part of the result, not the end of the job:

* a bad item (a PDF among the images, a corrupt file) raises a *non-retryable*
  ``ApplicationError``: retrying cannot fix it, so it fails at once and is reported;
* a transient error (a storage timeout) is retried by perdure and succeeds;
* if a whole child fails (terminated, timed out), the parent reports each of its items as
  failed and carries on with the other batches.

Why children rather than 10,000 activities in one workflow? Each child has its own history,
so no single history grows without bound, and a batch is a unit you can see, retry or
cancel on its own. (For far larger inputs, ``perdure.patterns.map_activity_in_batches``
builds the tree of children for you: see examples/fan_out_100k.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from perdure import ApplicationError, Client, RetryPolicy, Worker, activity, workflow
from perdure.client import WorkflowIDConflictPolicy
from perdure.patterns import map_activity, map_concurrently

TASK_QUEUE = "thumbnails"
STARTED_AT = time.monotonic()


def say(line: str) -> None:
    """Print one narrative line, stamped with the seconds since this process started."""
    print(f"[{time.monotonic() - STARTED_AT:5.1f}s] {line}", flush=True)


# ---------------------------------------------------------------------------------------------
# Data (stored as JSON: plain dataclasses).
# ---------------------------------------------------------------------------------------------


@dataclass
class FanOutJob:
    job_id: str
    items: list[str]
    batch_size: int = 10
    max_concurrent_batches: int = 3
    work_seconds: float = 0.0  # how long each item takes (to make the demo watchable)


@dataclass
class Batch:
    index: int
    items: list[str]
    work_seconds: float


@dataclass
class ItemTask:
    item: str
    batch: int
    work_seconds: float


@dataclass
class ItemFailure:
    item: str
    batch: int
    reason: str


@dataclass
class BatchResult:
    index: int
    outputs: dict[str, str]  # item -> thumbnail
    failures: list[ItemFailure]
    started: datetime | None = None  # on the child's workflow clock
    finished: datetime | None = None


@dataclass
class BatchWindow:
    index: int
    start_seconds: float  # since the job started
    end_seconds: float


@dataclass
class FanOutReport:
    job_id: str
    total_items: int
    outputs: dict[str, str]
    failures: list[ItemFailure]
    batches: int
    peak_concurrent_batches: int
    windows: list[BatchWindow] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# The activity: one item. It can fail in two ways, and the difference matters.
# ---------------------------------------------------------------------------------------------

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@activity.defn
async def make_thumbnail(task: ItemTask) -> str:
    attempt = activity.info().attempt
    label = f"batch {task.batch}  {task.item:<22} attempt {attempt}"
    await asyncio.sleep(task.work_seconds * random.uniform(0.5, 1.0))
    if not task.item.endswith(IMAGE_SUFFIXES):
        say(f"{label}  FAILED: not an image (not retryable)")
        # non_retryable: trying again cannot turn a PDF into an image.
        raise ApplicationError(
            f"unsupported format: {task.item}", type="UnsupportedFormat", non_retryable=True
        )
    if "corrupt" in task.item:
        say(f"{label}  FAILED: corrupt file (not retryable)")
        raise ApplicationError("corrupt image data", type="CorruptImage", non_retryable=True)
    if "flaky" in task.item and attempt == 1:
        say(f"{label}  FAILED: storage timeout (will retry)")
        # A plain exception is retryable: perdure retries it per the retry policy.
        raise ConnectionError("storage timeout")
    thumbnail = "thumbs/" + task.item.rsplit(".", 1)[0] + ".png"
    say(f"{label}  ok -> {thumbnail}")
    return thumbnail


ITEM_TIMEOUT = timedelta(seconds=30)
ITEM_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.2), maximum_attempts=5)


# ---------------------------------------------------------------------------------------------
# The child workflow: one batch.
# ---------------------------------------------------------------------------------------------


@workflow.defn
class ProcessBatch:
    @workflow.run
    async def run(self, batch: Batch) -> BatchResult:
        started = workflow.now()
        # One activity per item, all at once. A failed item is recorded in its outcome, and
        # the others go on: we want every item's outcome.
        result = await map_activity(
            make_thumbnail,
            [ItemTask(item, batch.index, batch.work_seconds) for item in batch.items],
            start_to_close_timeout=ITEM_TIMEOUT,
            retry_policy=ITEM_RETRY,
        )
        outputs: dict[str, str] = {}
        failures: list[ItemFailure] = []
        for item, outcome in zip(batch.items, result.outcomes, strict=True):
            if outcome.ok:
                outputs[item] = outcome.value
            else:
                # The error is an ActivityError; its .cause is the activity's own error
                # (after any retries).
                failures.append(ItemFailure(item, batch.index, str(outcome.error.cause)))
        return BatchResult(batch.index, outputs, failures, started, workflow.now())


# ---------------------------------------------------------------------------------------------
# The parent workflow: split, fan out (bounded), fan in.
# ---------------------------------------------------------------------------------------------


@workflow.defn
class FanOutWorkflow:
    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.done = 0
        self.total = 0

    @workflow.run
    async def run(self, job: FanOutJob) -> FanOutReport:
        size = max(1, job.batch_size)
        batches = [
            Batch(index, job.items[i : i + size], job.work_seconds)
            for index, i in enumerate(range(0, len(job.items), size))
        ]
        self.total = len(batches)

        async def run_batch(batch: Batch) -> BatchResult:
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                # A readable, deterministic child id: "<job id>-batch-03".
                result: BatchResult = await workflow.execute_child_workflow(
                    ProcessBatch.run,
                    batch,
                    id=f"{workflow.info().workflow_id}-batch-{batch.index:02d}",
                )
                return result
            finally:
                self.running -= 1
                self.done += 1

        # At most this many children run at once; the others wait their turn.
        fanned = await map_concurrently(
            run_batch, batches, max_concurrency=max(1, job.max_concurrent_batches)
        )
        results: list[BatchResult] = []
        for batch, outcome in zip(batches, fanned.outcomes, strict=True):
            if outcome.ok:
                results.append(outcome.value)
            else:
                # The whole batch failed (terminated, timed out, a bug that failed it): report
                # its items as failed; the other batches went on.
                err = outcome.error.cause
                reason = f"batch failed: {type(err).__name__}: {err}"
                failed = [ItemFailure(i, batch.index, reason) for i in batch.items]
                results.append(BatchResult(batch.index, {}, failed))

        start = workflow.info().start_time
        outputs: dict[str, str] = {}
        failures: list[ItemFailure] = []
        windows: list[BatchWindow] = []
        for r in results:
            outputs.update(r.outputs)
            failures.extend(r.failures)
            if r.started is not None and r.finished is not None:
                windows.append(
                    BatchWindow(
                        r.index,
                        (r.started - start).total_seconds(),
                        (r.finished - start).total_seconds(),
                    )
                )
        return FanOutReport(
            job.job_id, len(job.items), outputs, failures, len(batches), self.peak, windows
        )

    @workflow.query
    def progress(self) -> dict[str, int]:
        return {"batches": self.total, "done": self.done, "running": self.running}


# ---------------------------------------------------------------------------------------------
# The demo.
# ---------------------------------------------------------------------------------------------


def demo_items(count: int) -> list[str]:
    items = [f"photo-{i:02d}.jpg" for i in range(1, count + 1)]
    # A few troublemakers: two bad items (not retryable) and one transient failure.
    for position, name in ((2, "scan-03.pdf"), (6, "photo-07-flaky.jpg"), (9, "corrupt-10.jpg")):
        if position < count:
            items[position] = name
    return items


async def main(db: Path, job: FanOutJob) -> int:
    print(f"perdure fan-out demo, database {db}")
    print(
        f"({len(job.items)} items, batches of {job.batch_size}, at most "
        f"{job.max_concurrent_batches} batches at a time)\n"
    )
    client = await Client.connect(f"sqlite:///{db}")
    try:
        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[FanOutWorkflow, ProcessBatch],
            activities=[make_thumbnail],
        ):
            handle = await client.start_workflow(
                FanOutWorkflow.run,
                job,
                id=job.job_id,
                task_queue=TASK_QUEUE,
                # If the demo was interrupted, pick the job up where it stands.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
            report: FanOutReport = await handle.result()
    finally:
        await client.close()

    ok = len(report.outputs)
    print(
        f"\nReport for {report.job_id}: {report.total_items} items, {ok} thumbnails made, "
        f"{len(report.failures)} failed; {report.batches} batches, at most "
        f"{report.peak_concurrent_batches} at a time"
    )
    for w in report.windows:
        print(f"  batch {w.index}: {w.start_seconds:4.1f}s -> {w.end_seconds:4.1f}s")
    for failure in report.failures:
        print(f"  FAILED  batch {failure.batch}  {failure.item:<22} {failure.reason}")
    print("\nDone.")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("perdure-fan-out.db"),
        help="SQLite file holding the workflows (default: %(default)s)",
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the database first and start from scratch"
    )
    parser.add_argument("--items", type=int, default=16, help="items (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=4, help="(default: %(default)s)")
    parser.add_argument(
        "--max-concurrent", type=int, default=2, help="batches at a time (default: %(default)s)"
    )
    parser.add_argument(
        "--work-seconds", type=float, default=0.4, help="time per item (default: %(default)s)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    demo_job = FanOutJob(
        job_id="thumbnails-job",
        items=demo_items(args.items),
        batch_size=args.batch_size,
        max_concurrent_batches=args.max_concurrent,
        work_seconds=args.work_seconds,
    )
    sys.exit(asyncio.run(main(args.db, demo_job)))
