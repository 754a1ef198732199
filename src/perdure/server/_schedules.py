"""The schedules: list, create, describe, delete, pause, unpause, trigger, backfill (the
routes of ``perdure schedule``)."""

from __future__ import annotations

import zoneinfo
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from starlette.responses import Response

from perdure._common.schedule_cron import calendar_from_strings
from perdure._operate.shapes import schedule_json, schedule_list_json
from perdure.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from perdure.server._openapi_params import ScheduleIdPath, problems
from perdure.server._paths import UnquotedRoute
from perdure.server._schedule_models import (
    BackfillBody,
    CreateScheduleBody,
    NoteBody,
    Overlap,
    ScheduleDescription,
    ScheduleDone,
    ScheduleList,
    ScheduleSpecBody,
    TriggerBody,
    UpdateScheduleBody,
)
from perdure.server._state import JSON, server_state, user_values

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"], route_class=UnquotedRoute)


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _overlap(name: Overlap | None) -> ScheduleOverlapPolicy | None:
    return None if name is None else ScheduleOverlapPolicy[name]


def _spec(body: ScheduleSpecBody) -> ScheduleSpec:
    if body.time_zone_name is not None:
        try:
            zoneinfo.ZoneInfo(body.time_zone_name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"time_zone_name {body.time_zone_name!r} is not a time zone (e.g. Europe/Paris)"
            ) from None
    if not (body.cron_expressions or body.intervals or body.calendars):
        raise ValueError("Say when it acts: spec.cron_expressions, intervals or calendars")
    return ScheduleSpec(
        calendars=[calendar_from_strings(c) for c in body.calendars],
        intervals=[
            ScheduleIntervalSpec(every=timedelta(seconds=i.every), offset=_seconds(i.offset))
            for i in body.intervals
        ],
        cron_expressions=list(body.cron_expressions),
        start_at=body.start_at,
        end_at=body.end_at,
        jitter=_seconds(body.jitter),
        time_zone_name=body.time_zone_name,
    )


def _schedule(body: CreateScheduleBody) -> Schedule:
    action, policy_body, state = body.action, body.policy, body.state
    policy = SchedulePolicy(
        overlap=ScheduleOverlapPolicy[policy_body.overlap],
        pause_on_failure=policy_body.pause_on_failure,
    )
    if policy_body.catchup_window is not None:
        policy.catchup_window = timedelta(seconds=policy_body.catchup_window)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            action.workflow_type,
            args=action.args,
            id=action.workflow_id,
            task_queue=action.task_queue,
            execution_timeout=_seconds(action.execution_timeout),
            run_timeout=_seconds(action.run_timeout),
            task_timeout=_seconds(action.task_timeout),
            memo=action.memo,
        ),
        spec=_spec(body.spec),
        policy=policy,
        state=ScheduleState(
            note=state.note,
            paused=state.paused,
            limited_actions=state.remaining_actions > 0,
            remaining_actions=state.remaining_actions,
        ),
    )


def _changed(schedule: Schedule, body: UpdateScheduleBody) -> Schedule:
    """``schedule`` with what ``body`` gives changed (the fields it names, nulls included)."""
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)  # the only action there is
    if body.action is not None:
        given = body.action.model_fields_set
        names = (("workflow_type", "workflow"), ("workflow_id", "id"), ("task_queue", None))
        for name, attr in names:
            if name in given:
                value = getattr(body.action, name)
                if value is None:
                    raise ValueError(f"action.{name} cannot be null: leave it out to keep it")
                setattr(action, attr or name, value)
        if "args" in given:
            action.args = list(body.action.args or [])
        for name in ("execution_timeout", "run_timeout", "task_timeout"):
            if name in given:
                setattr(action, name, _seconds(getattr(body.action, name)))
        if "memo" in given:
            action.memo = body.action.memo
    if body.spec is not None:
        schedule.spec = _spec(body.spec)
    if body.policy is not None:
        policy = body.policy
        if policy.overlap is not None:
            schedule.policy.overlap = ScheduleOverlapPolicy[policy.overlap]
        if policy.catchup_window is not None:
            schedule.policy.catchup_window = timedelta(seconds=policy.catchup_window)
        if policy.pause_on_failure is not None:
            schedule.policy.pause_on_failure = policy.pause_on_failure
    if body.state is not None:
        state = body.state
        if "note" in state.model_fields_set:
            schedule.state.note = state.note
        if state.paused is not None:
            schedule.state.paused = state.paused
        if state.remaining_actions is not None:
            schedule.state.remaining_actions = state.remaining_actions
            schedule.state.limited_actions = state.remaining_actions > 0
    return schedule


def _done(schedule_id: str, what: str) -> Response:
    return JSON({"schedule_id": schedule_id, "result": what})


@router.get("", response_model=ScheduleList, responses=problems(), summary="List the schedules")
async def list_schedules(
    request: Request,
    query: Annotated[
        str | None, Query(description="e.g. `TemporalSchedulePaused = true` (all without one).")
    ] = None,
) -> Response:
    found = await server_state(request).client.list_schedules(query or None)
    return JSON({"schedules": [await schedule_list_json(s) async for s in found]})


@router.post(
    "",
    status_code=201,
    response_model=ScheduleDescription,
    responses=problems(409, 413),
    summary="Create a schedule (running workers take its actions)",
)
async def create_schedule(request: Request, body: CreateScheduleBody) -> Response:
    client = server_state(request).client
    with user_values():
        handle = await client.create_schedule(
            body.schedule_id, _schedule(body), trigger_immediately=body.trigger_immediately
        )
    return JSON(await schedule_json(await handle.describe()), status_code=201)


@router.get(
    "/{schedule_id}",
    response_model=ScheduleDescription,
    responses=problems(404),
    summary="Describe a schedule: when it acts, what it did, what it will do",
)
async def describe_schedule(request: Request, schedule_id: ScheduleIdPath) -> Response:
    handle = server_state(request).client.get_schedule_handle(schedule_id)
    return JSON(await schedule_json(await handle.describe()))


@router.patch(
    "/{schedule_id}",
    response_model=ScheduleDescription,
    responses=problems(404, 413),
    summary="Change a schedule: the fields given (a spec given replaces the spec)",
)
async def update_schedule(
    request: Request, schedule_id: ScheduleIdPath, body: UpdateScheduleBody
) -> Response:
    handle = server_state(request).client.get_schedule_handle(schedule_id)

    def change(current: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=_changed(current.description.schedule, body))

    with user_values():
        await handle.update(change)
    return JSON(await schedule_json(await handle.describe()))


@router.delete(
    "/{schedule_id}",
    response_model=ScheduleDone,
    responses=problems(404),
    summary="Delete a schedule (the workflows it started run on)",
)
async def delete_schedule(request: Request, schedule_id: ScheduleIdPath) -> Response:
    await server_state(request).client.get_schedule_handle(schedule_id).delete()
    return _done(schedule_id, "deleted")


@router.post(
    "/{schedule_id}/pause",
    response_model=ScheduleDone,
    responses=problems(404),
    summary="Pause a schedule",
)
async def pause_schedule(
    request: Request, schedule_id: ScheduleIdPath, body: Annotated[NoteBody | None, Body()] = None
) -> Response:
    note = (body or NoteBody()).note or "Paused via perdure server"
    await server_state(request).client.get_schedule_handle(schedule_id).pause(note=note)
    return _done(schedule_id, "paused")


@router.post(
    "/{schedule_id}/unpause",
    response_model=ScheduleDone,
    responses=problems(404),
    summary="Unpause a schedule",
)
async def unpause_schedule(
    request: Request, schedule_id: ScheduleIdPath, body: Annotated[NoteBody | None, Body()] = None
) -> Response:
    note = (body or NoteBody()).note or "Unpaused via perdure server"
    await server_state(request).client.get_schedule_handle(schedule_id).unpause(note=note)
    return _done(schedule_id, "unpaused")


@router.post(
    "/{schedule_id}/trigger",
    response_model=ScheduleDone,
    responses=problems(404),
    summary="Take one action now (even if paused)",
)
async def trigger_schedule(
    request: Request,
    schedule_id: ScheduleIdPath,
    body: Annotated[TriggerBody | None, Body()] = None,
) -> Response:
    overlap = _overlap((body or TriggerBody()).overlap)
    await server_state(request).client.get_schedule_handle(schedule_id).trigger(overlap=overlap)
    return _done(schedule_id, "triggered")


@router.post(
    "/{schedule_id}/backfill",
    response_model=ScheduleDone,
    responses=problems(404),
    summary="Take now the actions of a past period, as if it were passing",
)
async def backfill_schedule(
    request: Request, schedule_id: ScheduleIdPath, body: BackfillBody
) -> Response:
    if body.end_at < body.start_at:
        raise ValueError("end_at is before start_at")
    await (
        server_state(request)
        .client.get_schedule_handle(schedule_id)
        .backfill(
            ScheduleBackfill(
                start_at=body.start_at, end_at=body.end_at, overlap=_overlap(body.overlap)
            )
        )
    )
    return _done(schedule_id, "backfilled")
