"""The time-skipping environment: a workflow that waits 90 days and sends 4 reminders on the
way runs to the end with every timer at its virtual time (benchmarks/bench_time_skipping.py
prints how long it takes in real time)."""

from __future__ import annotations

from datetime import datetime, timedelta

from perdure import Worker, activity, workflow
from perdure.testing import WorkflowEnvironment

SENT: list[datetime] = []


@activity.defn
async def send_reminder(day: int) -> None:
    SENT.append(activity.info().started_time)


@workflow.defn
class Subscription:
    @workflow.run
    async def run(self) -> str:
        for day in (18, 36, 54, 72):
            await workflow.sleep(workflow_until(day))
            await workflow.execute_activity(
                send_reminder, day, start_to_close_timeout=timedelta(seconds=30)
            )
        await workflow.sleep(workflow_until(90))
        return f"renewed on {workflow.now().date()}"


def workflow_until(day: int) -> timedelta:
    start = workflow.info().start_time
    return start + timedelta(days=day) - workflow.now()


async def test_ninety_days_and_four_reminders() -> None:
    SENT.clear()
    start = datetime(2026, 1, 1, 9, 0).astimezone()
    async with await WorkflowEnvironment.start_time_skipping(start_time=start) as env:
        async with Worker(
            env.client, task_queue="q", workflows=[Subscription], activities=[send_reminder]
        ):
            result = await env.client.execute_workflow(Subscription.run, id="s", task_queue="q")
        assert result == f"renewed on {(start + timedelta(days=90)).date()}"
        assert await env.get_current_time() >= start + timedelta(days=90)
    assert [round((t - start) / timedelta(days=1)) for t in SENT] == [18, 36, 54, 72]
