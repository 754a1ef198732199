"""A nightly report: a schedule that starts a workflow at 02:30 every night, in a time zone.

Run it::

    pip install -e .
    python examples/nightly_report.py            # uses ./perdure-nightly.db
    python examples/nightly_report.py --reset    # forget earlier runs and start fresh

The schedule ``nightly-report`` starts the ``NightlyReport`` workflow at 02:30 in
America/New_York (``30 2 * * *``: on the night the clocks spring forward there is no 02:30,
so no report; on the night they fall back, one). Each run reports on the day before its
slot, which it reads from its ``TemporalScheduledStartTime`` search attribute: a run started
late (a backfill, or catching up after an outage) still reports on its own night.

Nobody waits for 02:30 in a demo: the script backfills the last three nights (taken now, as
if those nights were passing, one after another: ``BUFFER_ALL``) and triggers one report
now, runs a worker until the four are done, prints them, and shows the schedule as
``describe()`` sees it, with its next runs. Run it again: the schedule is already there (it
is updated, not created twice), and the nights already reported are reported again, since
a backfill takes its slots again.

With the schedule in place, any worker on the database takes the nightly runs: keep
``perdure worker --db sqlite:///perdure-nightly.db -q reports nightly_report`` running (from
``examples/``), and see it with ``perdure schedule describe -s nightly-report``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from perdure import Client, Worker, activity, workflow
from perdure.client import (
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from perdure.common import SearchAttributeKey

TASK_QUEUE = "reports"
SCHEDULE_ID = "nightly-report"
ZONE = "America/New_York"
SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


@dataclass
class Report:
    day: str  # the local date reported on, YYYY-MM-DD
    orders: int
    revenue: float


@activity.defn
async def build_report(day: str) -> Report:
    """Query the warehouse for a day's orders (here: numbers made up from the date)."""
    seed = int(hashlib.sha256(day.encode()).hexdigest()[:8], 16)
    orders = 80 + seed % 120
    return Report(day=day, orders=orders, revenue=round(orders * (20 + seed % 37) * 1.07, 2))


@workflow.defn
class NightlyReport:
    @workflow.run
    async def run(self) -> Report:
        # The slot this run was started for (a trigger's is the moment it was triggered).
        slot = workflow.info().typed_search_attributes.get(SCHEDULED_START) or workflow.now()
        day = (slot.astimezone(ZoneInfo(ZONE)) - timedelta(days=1)).date().isoformat()
        return await workflow.execute_activity(
            build_report, day, start_to_close_timeout=timedelta(minutes=5)
        )


def nightly_schedule() -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            NightlyReport.run, id="nightly-report", task_queue=TASK_QUEUE
        ),
        spec=ScheduleSpec(cron_expressions=["30 2 * * *"], time_zone_name=ZONE),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ALL),
    )


async def ensure_schedule(client: Client) -> None:
    """Create the schedule, or bring an existing one up to date."""
    try:
        await client.create_schedule(SCHEDULE_ID, nightly_schedule())
        print(f"Created schedule {SCHEDULE_ID}")
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=nightly_schedule())

        await client.get_schedule_handle(SCHEDULE_ID).update(replace)
        print(f"Updated schedule {SCHEDULE_ID}")


async def wait_for_actions(client: Client, before: int, taken: int) -> list[tuple[str, Report]]:
    """Once the schedule has taken ``taken`` actions more than ``before`` and none runs: each
    of those runs' workflow id and report, oldest first."""
    handle = client.get_schedule_handle(SCHEDULE_ID)
    while True:
        info = (await handle.describe()).info
        if info.num_actions >= before + taken and not info.running_actions:
            break
        await asyncio.sleep(0.1)
    out = []
    for action in info.recent_actions[-taken:]:
        run = action.action
        assert isinstance(run, ScheduleActionExecutionStartWorkflow)
        handle_ = client.get_workflow_handle(run.workflow_id, run_id=run.first_execution_run_id)
        out.append((run.workflow_id, Report(**await handle_.result())))
    return out


async def main(db: Path) -> None:
    client = await Client.connect(f"sqlite:///{db}")
    async with (
        client,
        Worker(client, task_queue=TASK_QUEUE, workflows=[NightlyReport], activities=[build_report]),
    ):
        await ensure_schedule(client)
        handle = client.get_schedule_handle(SCHEDULE_ID)
        before = (await handle.describe()).info.num_actions
        now = datetime.now(UTC)
        # The last three nights' slots, taken now, one after another; then one report now.
        await handle.backfill(ScheduleBackfill(start_at=now - timedelta(days=3), end_at=now))
        await handle.trigger()
        print("Backfilled the last three nights and triggered one report now:")
        for workflow_id, report in await wait_for_actions(client, before, 4):
            print(f"  {workflow_id}: {report.day}, {report.orders} orders, ${report.revenue:,.2f}")
        desc = await handle.describe()
    print(f"Schedule {desc.id}: {desc.info.num_actions} reports in all")
    print(f"Next runs (02:30 in {ZONE}, shown in UTC):")
    for moment in desc.info.next_action_times[:3]:
        print(f"  {moment:%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("perdure-nightly.db"))
    parser.add_argument("--reset", action="store_true", help="delete the database first")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if options.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{options.db}{suffix}").unlink(missing_ok=True)
    asyncio.run(main(options.db))
