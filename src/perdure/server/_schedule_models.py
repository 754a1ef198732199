"""The bodies of the schedule routes (OpenAPI models: FastAPI writes the document from
them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from perdure.server._models import JSONArgs, Seconds

Overlap = Literal[
    "SKIP", "BUFFER_ONE", "BUFFER_ALL", "CANCEL_OTHER", "TERMINATE_OTHER", "ALLOW_ALL"
]
Name = Field(min_length=1, max_length=1000)
SomeName = Field(default=None, min_length=1, max_length=1000)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ---------------------------------------------------------------------------------
class ScheduleActionBody(_Body):
    """The workflow each action starts; its id is ``{workflow_id}-{slot time}``."""

    workflow_type: str = Name
    workflow_id: str = Name
    task_queue: str = Name
    args: JSONArgs = Field(default_factory=list)
    execution_timeout: Seconds | None = None
    run_timeout: Seconds | None = None
    task_timeout: Seconds | None = None
    memo: dict[str, Any] | None = None


class IntervalBody(_Body):
    every: Seconds
    offset: float | None = Field(default=None, ge=0, le=100 * 365 * 86400)


class ScheduleSpecBody(_Body):
    """When it acts: cron expressions, intervals (seconds) and calendars (each a JSON object
    of cron-like fields, as ``perdure schedule create --calendar``)."""

    cron_expressions: list[str] = Field(default_factory=list, max_length=100)
    intervals: list[IntervalBody] = Field(default_factory=list, max_length=100)
    calendars: list[dict[str, str]] = Field(default_factory=list, max_length=100)
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    jitter: Seconds | None = None
    time_zone_name: str | None = Field(default=None, min_length=1, max_length=100)


class SchedulePolicyBody(_Body):
    overlap: Overlap = "SKIP"
    catchup_window: Seconds | None = Field(default=None, description="Default: 365 days.")
    pause_on_failure: bool = False


class ScheduleStateBody(_Body):
    note: str | None = None
    paused: bool = False
    remaining_actions: int = Field(default=0, ge=0, le=2**31, description="0: no limit")


class CreateScheduleBody(_Body):
    """``POST /api/v1/schedules``: what ``client.create_schedule`` takes."""

    schedule_id: str = Name
    action: ScheduleActionBody
    spec: ScheduleSpecBody
    policy: SchedulePolicyBody = Field(default_factory=SchedulePolicyBody)
    state: ScheduleStateBody = Field(default_factory=ScheduleStateBody)
    trigger_immediately: bool = False


class ScheduleActionPatch(_Body):
    """The fields of the action to change (null clears a timeout or the memo)."""

    workflow_type: str | None = SomeName
    workflow_id: str | None = SomeName
    task_queue: str | None = SomeName
    args: JSONArgs | None = None
    execution_timeout: Seconds | None = None
    run_timeout: Seconds | None = None
    task_timeout: Seconds | None = None
    memo: dict[str, Any] | None = None


class SchedulePolicyPatch(_Body):
    overlap: Overlap | None = None
    catchup_window: Seconds | None = None
    pause_on_failure: bool | None = None


class ScheduleStatePatch(_Body):
    note: str | None = None
    paused: bool | None = None
    remaining_actions: int | None = Field(default=None, ge=0, le=2**31, description="0: no limit")


class UpdateScheduleBody(_Body):
    """``PATCH /api/v1/schedules/{id}``: what to change. Only the fields given change; a
    given ``spec`` replaces the whole spec (say its time zone again)."""

    action: ScheduleActionPatch | None = None
    spec: ScheduleSpecBody | None = None
    policy: SchedulePolicyPatch | None = None
    state: ScheduleStatePatch | None = None


class NoteBody(_Body):
    note: str | None = None


class TriggerBody(_Body):
    overlap: Overlap | None = None


class BackfillBody(_Body):
    """Take now the actions of ``[start_at, end_at]``, as if it were passing."""

    start_at: AwareDatetime
    end_at: AwareDatetime
    overlap: Overlap | None = None


# -- responses --------------------------------------------------------------------------------
class ScheduleActionResult(BaseModel):
    scheduled_at: datetime | None
    started_at: datetime | None
    workflow_id: str | None
    run_id: str | None


class ScheduleSummary(BaseModel):
    """A listed schedule."""

    schedule_id: str
    workflow_type: str | None
    spec: dict[str, Any] | None
    state: dict[str, Any] | None
    recent_actions: list[ScheduleActionResult]
    next_action_times: list[datetime | None]
    memo: dict[str, Any]
    search_attributes: dict[str, Any]


class ScheduleList(BaseModel):
    schedules: list[ScheduleSummary]


class ScheduleDescription(BaseModel):
    """A described schedule, as ``perdure schedule describe -o json`` prints it."""

    schedule_id: str
    action: dict[str, Any]
    spec: dict[str, Any]
    policy: dict[str, Any]
    state: dict[str, Any]
    info: dict[str, Any]
    memo: dict[str, Any]
    search_attributes: dict[str, Any]


class ScheduleDone(BaseModel):
    schedule_id: str
    result: Literal["paused", "unpaused", "triggered", "backfilled", "deleted"]
