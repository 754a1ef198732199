"""Fan-out over 100,000 items on SQLite, with every workflow history kept short.

Run it::

    pip install -e .
    python examples/fan_out_100k.py                  # 100,000 items, ./perdure-fan-out-100k.db
    python examples/fan_out_100k.py --items 2000     # a quick look
    python examples/fan_out_100k.py --reset          # forget earlier runs and start fresh

A catalog of products must be re-indexed, one activity per product. 100,000 activities in
one workflow would give it a history of some 300,000 events, replayed in full whenever a
worker picks it up cold. ``perdure.patterns.map_activity_in_batches`` splits the work into a
tree of ``FanOutBatch`` child workflows instead: with the defaults here, the workflow starts
100 children of 1,000 products each (for 1,000,000 products it would be 10 children of 100
batches of 1,000). Each history stays at a few thousand events: the batch's ~3 events per
product, the parent's ~3 per child. A history that still grows past 4,096 events (a larger
``--batch-size``) continues as new.

Only index ranges travel between workflows, never the products: a child's input is a range
like ``range(41000, 42000)``, and the activity is given one index and loads that product
itself. The activity returns nothing: it writes its output where it belongs (here, a digest
kept in memory), so results do not fill the histories either. What comes back up the tree
is counts and the first failures.

A few products are corrupt: their activity fails with a non-retryable ``ApplicationError``,
which is counted and listed, and the other products go on.

At the end the script prints the wall time, the process's peak memory (RSS), and the longest
history of any workflow run it made. If you stop it (Ctrl-C) and run it again, the job goes
on where it stood.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import resource
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from perdure import ApplicationError, Client, RetryPolicy, Worker, activity, workflow
from perdure.client import WorkflowIDConflictPolicy
from perdure.patterns import FanOutBatch, FanOutSummary, map_activity_in_batches

TASK_QUEUE = "reindex"
HISTORY_BOUND = 10_000  # the events no history of this job may reach
CORRUPT_EVERY = 20_000  # product 7, 20,007, 40,007, ... is corrupt


# ---------------------------------------------------------------------------------------------
# The activity: one product, given by its index.
# ---------------------------------------------------------------------------------------------

INDEX: dict[int, str] = {}  # the "search index" the activity writes to


@activity.defn
async def reindex_product(catalog: str, product: int) -> None:
    # Load the product (here: made up from its index) and write its index entry.
    if product % CORRUPT_EVERY == 7:
        raise ApplicationError(
            f"product {product} has a corrupt record", type="CorruptRecord", non_retryable=True
        )
    record = f"{catalog}/{product}".encode()
    INDEX[product] = hashlib.blake2b(record, digest_size=8).hexdigest()


# ---------------------------------------------------------------------------------------------
# The workflow: fan out over the catalog, fan in the counts.
# ---------------------------------------------------------------------------------------------


@dataclass
class ReindexJob:
    catalog: str
    products: int
    batch_size: int = 1000
    max_children: int = 100
    max_concurrency: int = 100  # activities at a time, per batch
    max_concurrent_batches: int = 10  # batches at a time, per workflow


@workflow.defn
class ReindexCatalog:
    @workflow.run
    async def run(self, job: ReindexJob) -> FanOutSummary:
        return await map_activity_in_batches(
            reindex_product,
            range(job.products),
            args=[job.catalog],
            batch_size=job.batch_size,
            max_children=job.max_children,
            max_concurrency=job.max_concurrency,
            max_concurrent_children=job.max_concurrent_batches,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=5),
        )


# ---------------------------------------------------------------------------------------------
# The demo.
# ---------------------------------------------------------------------------------------------


@dataclass
class Figures:
    summary: FanOutSummary
    wall_seconds: float
    peak_rss_mib: float
    root_history: int
    largest_history: int  # of every run in the database: the root and the whole tree
    runs: int


def peak_rss_mib() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return usage / (1024 * 1024) if sys.platform == "darwin" else usage / 1024


async def report_progress(total: int, started: float) -> None:
    while True:
        await asyncio.sleep(5)
        print(
            f"[{time.monotonic() - started:6.1f}s] {len(INDEX):>9,} of {total:,} products "
            f"indexed by this process",
            flush=True,
        )


async def run_job(client: Client, job: ReindexJob, *, progress: bool = True) -> Figures:
    started = time.monotonic()
    ticker = asyncio.create_task(report_progress(job.products, started)) if progress else None
    try:
        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[ReindexCatalog, FanOutBatch],
            activities=[reindex_product],
        ):
            handle = await client.start_workflow(
                ReindexCatalog.run,
                job,
                id=f"reindex-{job.catalog}",
                task_queue=TASK_QUEUE,
                # If an earlier run was interrupted, pick the job up where it stands.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
            summary: FanOutSummary = await handle.result()
    finally:
        if ticker is not None:
            ticker.cancel()
    wall = time.monotonic() - started
    root = await handle.describe()
    lengths = [wf.history_length async for wf in client.list_workflows()]
    return Figures(summary, wall, peak_rss_mib(), root.history_length, max(lengths), len(lengths))


async def main(db: Path, job: ReindexJob) -> int:
    print(f"perdure fan-out over {job.products:,} products, database {db}")
    print(
        f"(batches of {job.batch_size:,}, at most {job.max_children} children a workflow, "
        f"{job.max_concurrent_batches} batches and {job.max_concurrency} activities a batch "
        "at a time)\n",
        flush=True,
    )
    client = await Client.connect(f"sqlite:///{db}")
    try:
        figures = await run_job(client, job)
    finally:
        await client.close()

    s = figures.summary
    print(
        f"\n{s.total:,} products: {s.succeeded:,} indexed, {s.failed:,} failed "
        f"({s.workflow_runs:,} batch workflow runs)"
    )
    for failure in s.failures[:10]:
        print(f"  FAILED  product {failure.item:>7,}  {failure.type}: {failure.message}")
    if s.failures_omitted:
        print(f"  ... and {s.failures_omitted:,} more")
    print(f"wall time:        {figures.wall_seconds:.1f} s")
    print(f"peak RSS:         {figures.peak_rss_mib:.0f} MiB")
    print(
        f"largest history:  {figures.largest_history:,} events "
        f"(of {figures.runs:,} workflow runs; the root's: {figures.root_history:,}; "
        f"bound {HISTORY_BOUND:,})"
    )
    return 0 if figures.largest_history < HISTORY_BOUND else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("perdure-fan-out-100k.db"),
        help="SQLite file holding the workflows (default: %(default)s)",
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the database first and start from scratch"
    )
    parser.add_argument("--items", type=int, default=100_000, help="(default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=1000, help="(default: %(default)s)")
    parser.add_argument(
        "--max-children", type=int, default=100, help="children a workflow (default: %(default)s)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=100, help="activities a batch (default: %(default)s)"
    )
    parser.add_argument("--concurrent-batches", type=int, default=10, help="(default: %(default)s)")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    demo_job = ReindexJob(
        catalog="catalog-2024",
        products=args.items,
        batch_size=args.batch_size,
        max_children=args.max_children,
        max_concurrency=args.concurrency,
        max_concurrent_batches=args.concurrent_batches,
    )
    sys.exit(asyncio.run(main(args.db, demo_job)))
