"""A schedule's policies on the engine, on SQLite and PostgreSQL, on a virtual clock: the six
overlap policies, the catch-up window after an outage (no worker running), pause on
failure, and jitter."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from schedule_support import QUEUE, START, WORKFLOWS, Job, at, schedule_env, started

from perdure import workflow
from perdure.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    WorkflowExecutionStatus,
)
from perdure.common import RetryPolicy
from perdure.exceptions import ApplicationError
from perdure.worker import Worker

STORES = ["sqlite", "postgresql"]
Status = WorkflowExecutionStatus


@workflow.defn
class Flaky:
    """Fails its first attempt, succeeds on the retry."""

    @workflow.run
    async def run(self) -> str:
        if workflow.info().attempt == 1:
            raise ApplicationError("first attempt fails")
        return "ok"


async def hourly(
    client: Client, name: str, action: ScheduleActionStartWorkflow, **policy: object
) -> None:
    await client.create_schedule(
        name,
        Schedule(
            action=action,
            spec=ScheduleSpec(cron_expressions=["@hourly"]),
            policy=SchedulePolicy(**policy),  # type: ignore[arg-type]
        ),
    )


def job(minutes: int, id: str = "job") -> ScheduleActionStartWorkflow:
    return ScheduleActionStartWorkflow(Job.run, minutes, id=id, task_queue=QUEUE)


async def start_times(client: Client, schedule_id: str) -> dict[str, datetime]:
    """The slot (HH:MM of the workflow id) of each run started, and when it started."""
    out = {}
    for workflow_id in await started(client, schedule_id):
        desc = await client.get_workflow_handle(workflow_id).describe()
        out[workflow_id[-9:-4]] = desc.start_time
    return out


@pytest.mark.parametrize("store", STORES)
async def test_skip_starts_nothing_while_one_runs(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            await hourly(env.client, "skip", job(90), overlap=ScheduleOverlapPolicy.SKIP)
            await env.sleep(timedelta(hours=4, minutes=10))
            info = (await env.client.get_schedule_handle("skip").describe()).info
        assert await start_times(env.client, "skip") == {
            "01:00": at(2026, 3, 2, 1),
            "03:00": at(2026, 3, 2, 3),  # 02:00 and 04:00 came while one ran
        }
        assert (info.num_actions, info.num_actions_skipped_overlap) == (2, 2)
        [running] = info.running_actions
        assert running.workflow_id == "job-2026-03-02T03:00:00Z"  # type: ignore[attr-defined]


@pytest.mark.parametrize("store", STORES)
async def test_buffer_one_keeps_one_start_for_when_the_run_closes(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            await hourly(env.client, "one", job(140), overlap=ScheduleOverlapPolicy.BUFFER_ONE)
            await env.sleep(timedelta(hours=5, minutes=50))
            info = (await env.client.get_schedule_handle("one").describe()).info
        # 01:00 runs to 03:20; 02:00 waits for it, 03:00 is skipped (one already waits);
        # 02:00's run goes to 05:40, 04:00 waits for it and 05:00 is skipped.
        assert await start_times(env.client, "one") == {
            "01:00": at(2026, 3, 2, 1),
            "02:00": at(2026, 3, 2, 3, 20),
            "04:00": at(2026, 3, 2, 5, 40),
        }
        assert info.num_actions_skipped_overlap == 2


@pytest.mark.parametrize("store", STORES)
async def test_buffer_all_runs_every_start_one_after_another(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            await hourly(env.client, "all", job(70), overlap=ScheduleOverlapPolicy.BUFFER_ALL)
            await env.sleep(timedelta(hours=4, minutes=45))
            info = (await env.client.get_schedule_handle("all").describe()).info
        assert await start_times(env.client, "all") == {
            "01:00": at(2026, 3, 2, 1),
            "02:00": at(2026, 3, 2, 2, 10),
            "03:00": at(2026, 3, 2, 3, 20),
            "04:00": at(2026, 3, 2, 4, 30),
        }
        assert info.num_actions_skipped_overlap == 0
        # Each action records its slot's time and when it really started.
        assert [(a.scheduled_at, a.started_at) for a in info.recent_actions][1] == (
            at(2026, 3, 2, 2),
            at(2026, 3, 2, 2, 10),
        )


@pytest.mark.parametrize(
    ("policy", "ended"),
    [
        (ScheduleOverlapPolicy.CANCEL_OTHER, Status.CANCELED),
        (ScheduleOverlapPolicy.TERMINATE_OTHER, Status.TERMINATED),
    ],
)
@pytest.mark.parametrize("store", STORES)
async def test_cancel_and_terminate_other_end_the_running_one_and_start(
    store: str, policy: ScheduleOverlapPolicy, ended: WorkflowExecutionStatus
) -> None:
    async with (
        schedule_env(store) as env,
        Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS),
    ):
        await hourly(env.client, "other", job(90), overlap=policy)
        await env.sleep(timedelta(hours=2, minutes=10))
        info = (await env.client.get_schedule_handle("other").describe()).info
        assert await started(env.client, "other") == {
            "job-2026-03-02T01:00:00Z": ended,
            "job-2026-03-02T02:00:00Z": Status.RUNNING,
        }
        assert await start_times(env.client, "other") == {
            "01:00": at(2026, 3, 2, 1),
            "02:00": at(2026, 3, 2, 2),
        }
        assert [r.workflow_id for r in info.running_actions] == [  # type: ignore[attr-defined]
            "job-2026-03-02T02:00:00Z"
        ]
        await env.sleep(timedelta(hours=1, minutes=30))  # let the last one finish


@pytest.mark.parametrize("store", STORES)
async def test_allow_all_starts_every_slot_at_once(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            await hourly(env.client, "allow", job(150), overlap=ScheduleOverlapPolicy.ALLOW_ALL)
            await env.sleep(timedelta(hours=3, minutes=10))
            runs = await started(env.client, "allow")
            info = (await env.client.get_schedule_handle("allow").describe()).info
            await env.sleep(timedelta(hours=3))
        assert list(runs.values()) == [Status.RUNNING] * 3
        assert info.num_actions == 3
        assert info.running_actions == []  # as in Temporal, ALLOW_ALL runs are not tracked


@pytest.mark.parametrize("store", STORES)
async def test_catchup_window_after_an_outage(store: str) -> None:
    window = timedelta(hours=2, minutes=15)
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            await hourly(
                env.client,
                "buffered",
                job(1, "b"),
                overlap=ScheduleOverlapPolicy.BUFFER_ALL,
                catchup_window=window,
            )
            await hourly(env.client, "skipping", job(1, "s"), catchup_window=window)
            await env.sleep(timedelta(hours=1, minutes=30))
        # No worker runs from 01:30 to 06:30: nothing fires.
        env.client.store.clock.advance_to(at(2026, 3, 2, 6, 30).timestamp())  # type: ignore[attr-defined]
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            await env.sleep(timedelta(minutes=10))
            buffered = (await env.client.get_schedule_handle("buffered").describe()).info
            skipping = (await env.client.get_schedule_handle("skipping").describe()).info
        # 02:00, 03:00 and 04:00 are further back than 2h15m at 06:30; 05:00 and 06:00 run
        # (one after the other), or under SKIP the first of them only.
        assert await start_times(env.client, "buffered") == {
            "01:00": at(2026, 3, 2, 1),
            "05:00": at(2026, 3, 2, 6, 30),
            "06:00": at(2026, 3, 2, 6, 31),
        }
        assert buffered.num_actions_missed_catchup_window == 3
        assert list(await start_times(env.client, "skipping")) == ["01:00", "05:00"]
        assert skipping.num_actions_missed_catchup_window == 3
        assert skipping.num_actions_skipped_overlap == 1
        assert START < buffered.next_action_times[0] == at(2026, 3, 2, 7)


@pytest.mark.parametrize("store", STORES)
async def test_pause_on_failure(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=[*WORKFLOWS, Flaky]):
            broken = ScheduleActionStartWorkflow("Broken", "boom", id="broken", task_queue=QUEUE)
            await hourly(env.client, "fails", broken, pause_on_failure=True)
            slow = ScheduleActionStartWorkflow(
                Job.run, 120, id="slow", task_queue=QUEUE, execution_timeout=timedelta(minutes=30)
            )
            await hourly(env.client, "times-out", slow, pause_on_failure=True)
            flaky = ScheduleActionStartWorkflow(
                Flaky.run,
                id="flaky",
                task_queue=QUEUE,
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5)),
            )
            await hourly(env.client, "retries", flaky, pause_on_failure=True)
            other = ScheduleActionStartWorkflow("Broken", "boom", id="other", task_queue=QUEUE)
            await hourly(env.client, "carries-on", other)
            await env.sleep(timedelta(hours=3, minutes=10))
        fails = (await env.client.get_schedule_handle("fails").describe()).schedule.state
        assert fails.paused
        assert fails.note == "paused due to workflow failure: broken-2026-03-02T01:00:00Z: boom"
        assert len(await started(env.client, "fails")) == 1
        timed = (await env.client.get_schedule_handle("times-out").describe()).schedule.state
        assert (timed.paused, timed.note) == (
            True,
            "paused due to workflow timeout: slow-2026-03-02T01:00:00Z",
        )
        # A failure its retry made good does not pause it; without the policy it carries on.
        retries = await env.client.get_schedule_handle("retries").describe()
        assert not retries.schedule.state.paused
        assert retries.info.num_actions == 3
        assert len(await started(env.client, "carries-on")) == 3


@pytest.mark.parametrize("store", STORES)
async def test_jitter_delays_each_start_but_not_its_id(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            await env.client.create_schedule(
                "jittery",
                Schedule(
                    action=job(1),
                    spec=ScheduleSpec(cron_expressions=["@hourly"], jitter=timedelta(minutes=20)),
                ),
            )
            await env.sleep(timedelta(hours=6, minutes=30))
            info = (await env.client.get_schedule_handle("jittery").describe()).info
        starts = await start_times(env.client, "jittery")
        assert list(starts) == ["01:00", "02:00", "03:00", "04:00", "05:00", "06:00"]
        delays = [starts[f"0{h}:00"] - at(2026, 3, 2, h) for h in range(1, 7)]
        assert all(timedelta(0) <= d <= timedelta(minutes=20) for d in delays)
        assert len(set(delays)) > 1
        assert [a.scheduled_at for a in info.recent_actions] == list(starts.values())
