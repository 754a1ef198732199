"""Schedules on the engine, on SQLite and PostgreSQL, on a virtual clock: what they start and
when (across DST changes), the workflow ids and search attributes of their runs, describe,
list, pause, trigger, backfill, update and delete."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from schedule_support import QUEUE, START, WORKFLOWS, Job, at, schedule_env, started

from perdure.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleNotFoundError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
)
from perdure.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from perdure.worker import Worker

STORES = ["sqlite", "postgresql"]
COMPLETED = WorkflowExecutionStatus.COMPLETED


def job(minutes: int = 1, id: str = "job") -> ScheduleActionStartWorkflow:
    return ScheduleActionStartWorkflow(Job.run, minutes, id=id, task_queue=QUEUE)


@pytest.mark.parametrize("store", STORES)
async def test_daily_schedule_over_30_virtual_days_runs_30_times(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            handle = await env.client.create_schedule(
                "daily", Schedule(action=job(), spec=ScheduleSpec(cron_expressions=["@daily"]))
            )
            began = time.monotonic()
            await env.sleep(timedelta(days=30, minutes=30))
            real = time.monotonic() - began
        runs = await started(env.client, "daily")
        assert list(runs) == [f"job-2026-03-{d:02d}T00:00:00Z" for d in range(3, 32)] + [
            "job-2026-04-01T00:00:00Z"
        ]
        assert set(runs.values()) == {COMPLETED}
        info = (await handle.describe()).info
        assert info.num_actions == 30
        assert info.num_actions_missed_catchup_window == 0
        assert [a.scheduled_at for a in info.recent_actions] == [
            at(2026, 3, 23) + timedelta(days=i) for i in range(10)
        ]
        assert info.next_action_times[:2] == [at(2026, 4, 2), at(2026, 4, 3)]
        assert len(info.next_action_times) == 10
        assert info.running_actions == []
        print(f"30 virtual days: {real:.2f}s real")


@pytest.mark.parametrize("store", STORES)
async def test_runs_carry_the_schedule_id_slot_time_and_action_options(store: str) -> None:
    tier = SearchAttributeKey.for_keyword("Tier")
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            action = ScheduleActionStartWorkflow(
                Job.run,
                1,
                id="tagged",
                task_queue=QUEUE,
                memo={"owner": "ops"},
                typed_search_attributes=TypedSearchAttributes([SearchAttributePair(tier, "gold")]),
            )
            await env.client.create_schedule(
                "tagged",
                Schedule(action=action, spec=ScheduleSpec(cron_expressions=["15 6 * * *"])),
            )
            await env.sleep(timedelta(hours=7))
        handle = env.client.get_workflow_handle("tagged-2026-03-02T06:15:00Z")
        assert await handle.result() == 1
        desc = await handle.describe()
        attrs = desc.typed_search_attributes
        assert attrs[SearchAttributeKey.for_keyword("TemporalScheduledById")] == "tagged"
        assert attrs[SearchAttributeKey.for_datetime("TemporalScheduledStartTime")] == at(
            2026, 3, 2, 6, 15
        )
        assert attrs[tier] == "gold"
        assert desc.memo == {"owner": "ops"}
        assert desc.start_time == at(2026, 3, 2, 6, 15)
        found = [w.id async for w in env.client.list_workflows("Tier = 'gold'")]
        assert found == ["tagged-2026-03-02T06:15:00Z"]


@pytest.mark.parametrize("store", STORES)
async def test_dst_spring_forward_skips_0230_and_fall_back_runs_0130_twice(store: str) -> None:
    async with schedule_env(store, start=at(2026, 3, 6, 12)) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            spec = ScheduleSpec(cron_expressions=["30 2 * * *"], time_zone_name="America/New_York")
            await env.client.create_schedule("spring", Schedule(action=job(id="s"), spec=spec))
            await env.sleep(timedelta(days=4))
        # 02:30 EST on the 7th, none on the 8th (02:00 jumps to 03:00), 02:30 EDT after.
        assert list(await started(env.client, "spring")) == [
            "s-2026-03-07T07:30:00Z",
            "s-2026-03-09T06:30:00Z",
            "s-2026-03-10T06:30:00Z",
        ]
    async with schedule_env(store, start=at(2026, 10, 31, 12)) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            for name, hour in (("fall-0230", 2), ("fall-0130", 1)):
                spec = ScheduleSpec(
                    calendars=[
                        ScheduleCalendarSpec(hour=[ScheduleRange(hour)], minute=[ScheduleRange(30)])
                    ],
                    time_zone_name="America/New_York",
                )
                await env.client.create_schedule(name, Schedule(action=job(id=name), spec=spec))
            await env.sleep(timedelta(days=2))
        assert list(await started(env.client, "fall-0230")) == [
            "fall-0230-2026-11-01T07:30:00Z",  # 02:30 EST, once
            "fall-0230-2026-11-02T07:30:00Z",
        ]
        assert list(await started(env.client, "fall-0130")) == [
            "fall-0130-2026-11-01T05:30:00Z",  # 01:30 EDT
            "fall-0130-2026-11-01T06:30:00Z",  # 01:30 EST
            "fall-0130-2026-11-02T06:30:00Z",
        ]


@pytest.mark.parametrize("store", STORES)
async def test_describe_shows_the_schedule_as_stored(store: str) -> None:
    async with schedule_env(store) as env:
        spec = ScheduleSpec(
            cron_expressions=["CRON_TZ=Europe/Paris 0 9 * * 1-5 # weekday mornings"],
            intervals=[ScheduleIntervalSpec(every=timedelta(hours=12), offset=timedelta(hours=1))],
            jitter=timedelta(seconds=30),
        )
        schedule = Schedule(
            action=job(),
            spec=spec,
            policy=SchedulePolicy(
                overlap=ScheduleOverlapPolicy.BUFFER_ALL,
                catchup_window=timedelta(minutes=5),
                pause_on_failure=True,
            ),
            state=ScheduleState(note="new", limited_actions=True, remaining_actions=3),
        )
        handle = await env.client.create_schedule("described", schedule, memo={"team": "data"})
        desc = await handle.describe()
        assert desc.id == "described"
        assert desc.schedule.policy == schedule.policy
        assert desc.schedule.state == schedule.state
        assert desc.schedule.spec.time_zone_name == "Europe/Paris"
        assert desc.schedule.spec.cron_expressions == []
        [calendar] = desc.schedule.spec.calendars
        assert calendar.comment == "weekday mornings"
        assert calendar.day_of_week == (ScheduleRange(1, 5),)
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.id, action.task_queue) == ("Job", "job", QUEUE)
        assert await desc.memo() == {"team": "data"}
        assert desc.info.created_at == START
        assert desc.info.last_updated_at is None
        # At most as many next times as actions remain.
        assert len(desc.info.next_action_times) == 3
        with pytest.raises(ScheduleAlreadyRunningError):
            await env.client.create_schedule("described", schedule)
        with pytest.raises(ScheduleNotFoundError):
            await env.client.get_schedule_handle("nope").describe()


@pytest.mark.parametrize("store", STORES)
async def test_limited_actions_count_down_and_stop(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            handle = await env.client.create_schedule(
                "limited",
                Schedule(
                    action=job(),
                    spec=ScheduleSpec(cron_expressions=["@hourly"]),
                    state=ScheduleState(limited_actions=True, remaining_actions=3),
                ),
            )
            await env.sleep(timedelta(hours=6))
            desc = await handle.describe()
            assert desc.info.num_actions == 3
            assert desc.schedule.state.remaining_actions == 0
            assert desc.info.next_action_times == []
            # A trigger still acts, and does not count.
            await handle.trigger()
            await env.sleep(timedelta(minutes=5))
        assert len(await started(env.client, "limited")) == 4
        assert (await handle.describe()).schedule.state.remaining_actions == 0
        with pytest.raises(ValueError, match="limited actions"):
            await env.client.create_schedule(
                "bad",
                Schedule(
                    action=job(), spec=ScheduleSpec(), state=ScheduleState(remaining_actions=2)
                ),
            )


@pytest.mark.parametrize("store", STORES)
async def test_pause_skips_the_time_paused_and_unpause_resumes(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            handle = await env.client.create_schedule(
                "pausing", Schedule(action=job(), spec=ScheduleSpec(cron_expressions=["@hourly"]))
            )
            await env.sleep(timedelta(hours=2, minutes=30))  # 01:00, 02:00
            await handle.pause(note="maintenance")
            desc = await handle.describe()
            assert (desc.schedule.state.paused, desc.schedule.state.note) == (True, "maintenance")
            await env.sleep(timedelta(hours=3))  # 03:00, 04:00, 05:00 pass paused
            await handle.unpause()
            await env.sleep(timedelta(hours=2))  # 06:00, 07:00
            desc = await handle.describe()
        assert [w[-9:-4] for w in await started(env.client, "pausing")] == [
            "01:00",
            "02:00",
            "06:00",
            "07:00",
        ]
        assert desc.info.num_actions == 4
        assert desc.info.num_actions_missed_catchup_window == 0
        assert desc.schedule.state.note == "Unpaused via perdure client"


@pytest.mark.parametrize("store", STORES)
async def test_trigger_and_backfill(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            handle = await env.client.create_schedule(
                "manual",
                Schedule(
                    action=job(),
                    spec=ScheduleSpec(cron_expressions=["0 12 * * *"]),
                    state=ScheduleState(paused=True),
                ),
            )
            await env.sleep(timedelta(minutes=10))
            await handle.trigger()  # paused: a trigger still acts
            await env.sleep(timedelta(minutes=10))
            await handle.backfill(
                ScheduleBackfill(
                    start_at=at(2026, 2, 25, 12),  # inclusive
                    end_at=at(2026, 2, 27, 12),
                    overlap=ScheduleOverlapPolicy.ALLOW_ALL,
                )
            )
            await env.sleep(timedelta(minutes=10))
        assert list(await started(env.client, "manual")) == [
            "job-2026-02-25T12:00:00Z",
            "job-2026-02-26T12:00:00Z",
            "job-2026-02-27T12:00:00Z",
            "job-2026-03-02T00:10:00Z",
        ]
        info = (await handle.describe()).info
        assert info.num_actions == 4
        with pytest.raises(ValueError, match="At least one"):
            await handle.backfill()


@pytest.mark.parametrize("store", STORES)
async def test_create_with_trigger_immediately_and_backfill(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            await env.client.create_schedule(
                "eager",
                Schedule(
                    action=job(),
                    spec=ScheduleSpec(cron_expressions=["@daily"]),
                    policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ALL),
                ),
                trigger_immediately=True,
                backfill=[ScheduleBackfill(start_at=at(2026, 2, 28), end_at=at(2026, 3, 1))],
            )
            await env.sleep(timedelta(hours=1))
        runs = await started(env.client, "eager")
        assert list(runs) == [
            "job-2026-02-28T00:00:00Z",
            "job-2026-03-01T00:00:00Z",
            "job-2026-03-02T00:00:00Z",
        ]
        assert set(runs.values()) == {COMPLETED}


@pytest.mark.parametrize("store", STORES)
async def test_update_replaces_the_spec_and_action(store: str) -> None:
    async with schedule_env(store) as env:
        async with Worker(env.client, task_queue=QUEUE, workflows=WORKFLOWS):
            handle = await env.client.create_schedule(
                "updated", Schedule(action=job(), spec=ScheduleSpec(cron_expressions=["@hourly"]))
            )
            await env.sleep(timedelta(hours=1, minutes=30))
            calls = 0

            def change(input: ScheduleUpdateInput) -> ScheduleUpdate:
                nonlocal calls
                calls += 1
                schedule = input.description.schedule
                schedule.spec = ScheduleSpec(cron_expressions=["*/30 * * * *"])
                assert isinstance(schedule.action, ScheduleActionStartWorkflow)
                schedule.action.id = "job2"
                return ScheduleUpdate(schedule=schedule)

            await handle.update(change)
            await env.sleep(timedelta(hours=1))
            await handle.update(lambda _: None)  # None: leave it
        assert calls == 1
        assert list(await started(env.client, "updated")) == [
            "job-2026-03-02T01:00:00Z",
            "job2-2026-03-02T02:00:00Z",
            "job2-2026-03-02T02:30:00Z",
        ]
        desc = await handle.describe()
        assert desc.info.last_updated_at == at(2026, 3, 2, 1, 30)
        assert desc.schedule.spec.calendars[0].minute == (ScheduleRange(0), ScheduleRange(30))


@pytest.mark.parametrize("store", STORES)
async def test_update_is_called_again_when_the_schedule_changed_meanwhile(store: str) -> None:
    async with schedule_env(store) as env:
        handle = await env.client.create_schedule(
            "raced", Schedule(action=job(), spec=ScheduleSpec(cron_expressions=["@hourly"]))
        )
        seen: list[bool] = []

        async def change(input: ScheduleUpdateInput) -> ScheduleUpdate:
            seen.append(input.description.schedule.state.paused)
            if len(seen) == 1:  # someone pauses it between the read and the write
                await handle.pause(note="by someone else")
            schedule = input.description.schedule
            schedule.policy.overlap = ScheduleOverlapPolicy.BUFFER_ONE
            return ScheduleUpdate(schedule=schedule)

        await handle.update(change)
        assert seen == [False, True]
        desc = await handle.describe()
        assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ONE
        assert desc.schedule.state.paused  # the pause was not overwritten


@pytest.mark.parametrize("store", STORES)
async def test_list_and_delete(store: str) -> None:
    async with schedule_env(store) as env:
        for i in range(3):
            await env.client.create_schedule(
                f"s{i}",
                Schedule(
                    action=job(),
                    spec=ScheduleSpec(cron_expressions=["@daily"]),
                    state=ScheduleState(paused=i == 1),
                ),
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(SearchAttributeKey.for_int("Rank"), i)]
                ),
            )
        listed = [s async for s in await env.client.list_schedules(page_size=2)]
        assert [s.id for s in listed] == ["s0", "s1", "s2"]
        assert listed[0].schedule is not None and listed[0].info is not None
        assert listed[0].info.next_action_times[0] == at(2026, 3, 3)
        assert [s.schedule.state.paused for s in listed if s.schedule] == [False, True, False]
        paused = [
            s.id async for s in await env.client.list_schedules("TemporalSchedulePaused = true")
        ]
        assert paused == ["s1"]
        ranked = [
            s.id async for s in await env.client.list_schedules("Rank >= 1 AND ScheduleId != 's2'")
        ]
        assert ranked == ["s1"]
        await env.client.get_schedule_handle("s1").delete()
        assert [s.id async for s in await env.client.list_schedules()] == ["s0", "s2"]
        with pytest.raises(ScheduleNotFoundError):
            await env.client.get_schedule_handle("s1").delete()
