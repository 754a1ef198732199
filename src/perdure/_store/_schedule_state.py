"""A schedule as the store keeps it: one row, its mutable state, and when it is next due.

The row holds the schedule (spec, action, policy, state, as the client gave them), what it
has done (counters, recent actions, the runs it started that are still running) and what
it has yet to do: the starts waiting for a running workflow to close (the buffer) and the
cursor, the nominal time of the last slot it has dealt with. ``next_fire`` is the time the
timer service should look at it again: the next slot's time (jitter included), now if
buffered starts can go, or never (NULL) while it is paused, out of actions or past its end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perdure._common.payload import Payload
from perdure._common.schedule_spec import ScheduleSpec, spec_from_dict, spec_to_dict
from perdure._common.schedule_times import CompiledSpec

# What describe() shows of the past and the future (Temporal's counts).
RECENT_ACTIONS = 10
NEXT_ACTION_TIMES = 10
# Search attributes of the runs a schedule starts (Temporal's names).
SCHEDULED_BY_ID = "TemporalScheduledById"
SCHEDULED_START_TIME = "TemporalScheduledStartTime"


@dataclass(slots=True)
class StartAction:
    """The workflow a schedule starts (payloads already encoded by the client)."""

    workflow_type: str
    workflow_id: str
    task_queue: str
    input: list[Payload]
    execution_timeout: float | None = None
    run_timeout: float | None = None
    task_timeout: float | None = None
    retry_policy: dict[str, Any] | None = None
    memo: dict[str, Any] | None = None
    search_attributes: dict[str, Any] | None = None
    priority: dict[str, Any] | None = None


@dataclass(slots=True)
class BufferedStart:
    """A start waiting for its turn: its slot, its overlap policy (0: the schedule's) and
    whether someone asked for it (trigger, backfill) rather than the spec."""

    nominal: float
    actual: float
    overlap: int = 0
    manual: bool = False


@dataclass(slots=True)
class ActionResult:
    """A start the schedule made: its slot's time (jitter included), when it happened, and
    the run."""

    scheduled_at: float
    started_at: float
    workflow_id: str
    run_id: str


@dataclass(slots=True)
class ScheduleRow:
    """One schedule, as the schedules table holds it."""

    namespace: str
    schedule_id: str
    action: StartAction
    spec: ScheduleSpec
    overlap: int = 1
    catchup_window: float = 365 * 86400.0
    pause_on_failure: bool = False
    note: str | None = None
    paused: bool = False
    limited_actions: bool = False
    remaining_actions: int = 0
    memo: dict[str, Any] | None = None
    search_attributes: dict[str, Any] | None = None
    created_at: float = 0.0
    updated_at: float | None = None
    cursor: float = 0.0
    num_actions: int = 0
    missed_catchup_window: int = 0
    skipped_overlap: int = 0
    running: list[tuple[str, str]] = field(default_factory=list)
    recent: list[ActionResult] = field(default_factory=list)
    buffer: list[BufferedStart] = field(default_factory=list)
    # Bumped by every change a client makes: update() refuses to overwrite a newer one.
    version: int = 1
    next_fire: float | None = None

    @property
    def seed(self) -> str:
        """What makes this schedule's jitter its own."""
        return f"{self.namespace}/{self.schedule_id}"

    def compiled(self) -> CompiledSpec:
        return CompiledSpec(self.spec, self.seed)

    def schedulable(self) -> bool:
        """Whether the spec's slots may start anything now (not paused, actions left)."""
        return not self.paused and (not self.limited_actions or self.remaining_actions > 0)

    def due(self, now: float) -> float | None:
        """When the timer service should next look at it (see the module docstring)."""
        times = []
        if self.buffer and not self.running:
            times.append(now)
        if self.schedulable():
            slot = self.compiled().next_slot(self.cursor)
            if slot is not None:
                times.append(slot.actual)
        return min(times) if times else None

    def to_data(self) -> dict[str, Any]:
        """Everything but the key, ``next_fire`` and ``version`` (columns of their own)."""
        a = self.action
        return {
            "action": {
                "workflow_type": a.workflow_type,
                "workflow_id": a.workflow_id,
                "task_queue": a.task_queue,
                "input": a.input,
                "execution_timeout": a.execution_timeout,
                "run_timeout": a.run_timeout,
                "task_timeout": a.task_timeout,
                "retry_policy": a.retry_policy,
                "memo": a.memo,
                "search_attributes": a.search_attributes,
                **({"priority": a.priority} if a.priority else {}),
            },
            "spec": spec_to_dict(self.spec),
            "policy": [self.overlap, self.catchup_window, self.pause_on_failure],
            "state": [self.note, self.paused, self.limited_actions, self.remaining_actions],
            "memo": self.memo,
            "search_attributes": self.search_attributes,
            "times": [self.created_at, self.updated_at, self.cursor],
            "counts": [self.num_actions, self.missed_catchup_window, self.skipped_overlap],
            "running": [list(r) for r in self.running],
            "recent": [
                [r.scheduled_at, r.started_at, r.workflow_id, r.run_id] for r in self.recent
            ],
            "buffer": [[b.nominal, b.actual, b.overlap, b.manual] for b in self.buffer],
        }

    @staticmethod
    def from_data(
        namespace: str,
        schedule_id: str,
        data: dict[str, Any],
        version: int,
        next_fire: float | None,
    ) -> ScheduleRow:
        overlap, catchup, pause_on_failure = data["policy"]
        note, paused, limited, remaining = data["state"]
        created, updated, cursor = data["times"]
        actions, missed, skipped = data["counts"]
        return ScheduleRow(
            namespace=namespace,
            schedule_id=schedule_id,
            action=StartAction(**data["action"]),
            spec=spec_from_dict(data["spec"]),
            overlap=overlap,
            catchup_window=catchup,
            pause_on_failure=pause_on_failure,
            note=note,
            paused=paused,
            limited_actions=limited,
            remaining_actions=remaining,
            memo=data.get("memo"),
            search_attributes=data.get("search_attributes"),
            created_at=created,
            updated_at=updated,
            cursor=cursor,
            num_actions=actions,
            missed_catchup_window=missed,
            skipped_overlap=skipped,
            running=[(r[0], r[1]) for r in data["running"]],
            recent=[ActionResult(*r) for r in data["recent"]],
            buffer=[BufferedStart(b[0], b[1], b[2], bool(b[3])) for b in data["buffer"]],
            version=version,
            next_fire=next_fire,
        )
