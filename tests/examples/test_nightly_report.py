"""examples/nightly_report.py: the schedule's runs report on their own nights, across a DST
change, on the virtual clock; and the script run as a user runs it, twice."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from example_support import EXAMPLES, load_example, run_example

from perdure import Worker
from perdure.testing import WorkflowEnvironment

SCRIPT = EXAMPLES / "nightly_report.py"
ex = load_example(SCRIPT)


async def test_each_run_reports_on_the_night_before_its_slot() -> None:
    start = datetime(2026, 3, 6, 12, tzinfo=UTC)  # New York springs forward on the 8th
    async with (
        await WorkflowEnvironment.start_time_skipping(start_time=start) as env,
        Worker(
            env.client,
            task_queue=ex.TASK_QUEUE,
            workflows=[ex.NightlyReport],
            activities=[ex.build_report],
        ),
    ):
        await ex.ensure_schedule(env.client)
        await env.sleep(timedelta(days=4))
        desc = await env.client.get_schedule_handle(ex.SCHEDULE_ID).describe()
        reports = {}
        for action in desc.info.recent_actions:
            run = action.action
            handle = env.client.get_workflow_handle(run.workflow_id)  # type: ignore[attr-defined]
            reports[run.workflow_id] = (await handle.result())["day"]  # type: ignore[attr-defined]
    # No 02:30 on March 8th: no report that night.
    assert reports == {
        "nightly-report-2026-03-07T07:30:00Z": "2026-03-06",
        "nightly-report-2026-03-09T06:30:00Z": "2026-03-08",
        "nightly-report-2026-03-10T06:30:00Z": "2026-03-09",
    }


def test_the_script_as_a_user_runs_it(tmp_path: Path) -> None:
    db = tmp_path / "nightly.db"
    first = run_example(SCRIPT, db)
    assert "Created schedule nightly-report" in first
    reports = re.findall(r"nightly-report-(\S+)Z: (\d{4}-\d\d-\d\d), (\d+) orders", first)
    assert len(reports) == 4
    assert "4 reports in all" in first
    assert len(re.findall(r"^  \d{4}-\d\d-\d\d 0[67]:30 UTC$", first, re.M)) == 3
    second = run_example(SCRIPT, db)
    assert "Updated schedule nightly-report" in second
    assert "8 reports in all" in second
