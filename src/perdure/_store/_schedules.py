"""The rules for schedules: create, fire, trigger, backfill, pause, update, delete.

Written once against the ``Tx`` protocol; every function runs inside one transaction. A
slot fires once: the timer service of any worker claims a due schedule (locked, and skipped
by other processes on PostgreSQL), and in the same transaction deals with every slot up to
now (started, buffered, skipped for overlap, or missed past the catch-up window), starts the
workflows, records them and moves the schedule's next time on. The workflow id of a start
is ``{action id}-{nominal time}``, started with ``REJECT_DUPLICATE`` (a second guard: the same
slot cannot start twice even by a schedule row restored from a backup).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from perdure._common.run_ids import new_run_id
from perdure._common.schedule_spec import ScheduleOverlapPolicy
from perdure._errors import (
    InvalidArgumentError,
    ScheduleAlreadyRunningError,
    ScheduleNotFoundError,
    WorkflowAlreadyStartedError,
)
from perdure._store import _executions as executions
from perdure._store import _schedule_buffer as buffering
from perdure._store import _starts as starts
from perdure._store._effects import Effects
from perdure._store._schedule_state import (
    NEXT_ACTION_TIMES,
    RECENT_ACTIONS,
    SCHEDULED_BY_ID,
    SCHEDULED_START_TIME,
    ActionResult,
    BufferedStart,
    ScheduleRow,
)
from perdure._store._tx import Tx
from perdure._store._types import StartWorkflowRequest
from perdure.common._enums import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

log = logging.getLogger("perdure.schedules")

# The most slots one backfill may cover (Temporal buffers at most 1,000 starts).
MAX_BACKFILL_SLOTS = 10_000
# How long a schedule whose firing failed waits before it is tried again.
RETRY_AFTER_FAILURE = 10.0


@dataclass(frozen=True, slots=True)
class Backfill:
    """Act as if ``start_at``..``end_at`` (epoch seconds, inclusive) passed now."""

    start_at: float
    end_at: float
    overlap: int = 0


def nominal_id(nominal: float) -> str:
    """A slot's time as its workflow ids carry it: RFC 3339, UTC, whole seconds."""
    return datetime.fromtimestamp(int(nominal), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _find(tx: Tx, namespace: str, schedule_id: str) -> ScheduleRow:
    row = await tx.get_schedule(namespace, schedule_id)
    if row is None:
        raise ScheduleNotFoundError(
            f"No schedule with id {schedule_id!r} in namespace {namespace!r}"
        )
    return row


async def _save(tx: Tx, row: ScheduleRow, now: float, fx: Effects) -> None:
    row.next_fire = row.due(now)
    fx.wake(row.next_fire)
    fx.notify("schedule", row.namespace, row.schedule_id)
    await tx.update_schedule(row)


# -- client operations ------------------------------------------------------------------------
async def create(
    tx: Tx,
    row: ScheduleRow,
    trigger_immediately: bool,
    backfills: list[Backfill],
    now: float,
    fx: Effects,
) -> None:
    """Create a schedule (``row`` as the client built it), acting on its first requests.

    Raises:
        ScheduleAlreadyRunningError: a schedule of that id exists.
    """
    if await tx.get_schedule(row.namespace, row.schedule_id) is not None:
        raise ScheduleAlreadyRunningError(row.schedule_id)
    row.created_at = row.cursor = now
    row.next_fire = row.due(now)
    await tx.insert_schedule(row)
    if trigger_immediately:
        row.buffer.append(BufferedStart(now, now, row.overlap, manual=True))
    _add_backfills(row, backfills)
    row = await _run_buffer(tx, row, now, fx)
    await _save(tx, row, now, fx)


async def trigger(
    tx: Tx, namespace: str, schedule_id: str, overlap: int, now: float, fx: Effects
) -> None:
    """Take one action now (``overlap`` 0: the schedule's policy), paused or not."""
    row = await _find(tx, namespace, schedule_id)
    row.buffer.append(BufferedStart(now, now, overlap, manual=True))
    row = await _run_buffer(tx, row, now, fx)
    await _save(tx, row, now, fx)


async def backfill(
    tx: Tx, namespace: str, schedule_id: str, backfills: list[Backfill], now: float, fx: Effects
) -> None:
    """Take the actions of past periods now, as if they were passing (no catch-up window,
    no pause, no limit on actions apply)."""
    row = await _find(tx, namespace, schedule_id)
    _add_backfills(row, backfills)
    row = await _run_buffer(tx, row, now, fx)
    await _save(tx, row, now, fx)


def _add_backfills(row: ScheduleRow, backfills: list[Backfill]) -> None:
    compiled = row.compiled()
    for b in backfills:
        # The start is inclusive (Temporal's current rule): look from just before it.
        slots = 0
        after = b.start_at - 0.001
        while (slot := compiled.next_slot(after)) is not None and slot.actual <= b.end_at:
            slots += 1
            if slots > MAX_BACKFILL_SLOTS:
                raise InvalidArgumentError(
                    f"A backfill of schedule {row.schedule_id!r} covers more than "
                    f"{MAX_BACKFILL_SLOTS:,} actions: backfill shorter periods"
                )
            row.buffer.append(BufferedStart(slot.nominal, slot.actual, b.overlap, manual=True))
            after = slot.nominal


async def set_paused(
    tx: Tx,
    namespace: str,
    schedule_id: str,
    paused: bool,
    note: str,
    now: float,
    fx: Effects,
) -> None:
    """Pause or unpause, with a note. The slots that pass while paused are not taken later
    (nor counted as missed)."""
    row = await _find(tx, namespace, schedule_id)
    if row.paused and not paused:
        row.cursor = max(row.cursor, now)
    row.paused = paused
    row.note = note
    row.version += 1
    await _save(tx, row, now, fx)


async def update(
    tx: Tx, new: ScheduleRow, version: int, set_search_attributes: bool, now: float, fx: Effects
) -> bool:
    """Replace the schedule's action, spec, policy and state with ``new``'s (and its search
    attributes, if ``set_search_attributes``), unless it changed since ``version`` was read:
    returns False then, for the caller to read it again."""
    row = await _find(tx, new.namespace, new.schedule_id)
    if row.version != version:
        return False
    row.action, row.spec = new.action, new.spec
    row.overlap, row.catchup_window = new.overlap, new.catchup_window
    row.pause_on_failure, row.note, row.paused = new.pause_on_failure, new.note, new.paused
    row.limited_actions, row.remaining_actions = new.limited_actions, new.remaining_actions
    if set_search_attributes:
        row.search_attributes = new.search_attributes
    # Slots before the update are not taken by the updated schedule (Temporal's rule).
    row.cursor = max(row.cursor, now)
    row.updated_at = now
    row.version += 1
    row = await _run_buffer(tx, row, now, fx)
    await _save(tx, row, now, fx)
    return True


async def delete(tx: Tx, namespace: str, schedule_id: str, fx: Effects) -> None:
    """Delete the schedule; the workflows it started run on."""
    if not await tx.delete_schedule(namespace, schedule_id):
        raise ScheduleNotFoundError(
            f"No schedule with id {schedule_id!r} in namespace {namespace!r}"
        )
    fx.notify("schedule", namespace, schedule_id)


def next_action_times(row: ScheduleRow, limit: int = NEXT_ACTION_TIMES) -> list[float]:
    """The times of the next actions (jitter included), no more than it has left."""
    if row.limited_actions:
        limit = min(limit, row.remaining_actions)
    return [slot.actual for slot in row.compiled().slots(row.cursor, limit)]


# -- firing ----------------------------------------------------------------------------------
async def fire(tx: Tx, namespace: str, schedule_id: str, now: float, fx: Effects) -> bool:
    """Deal with every slot of a due schedule up to ``now``; returns False if it was not
    due (another transaction fired it first)."""
    row = await tx.claim_schedule(namespace, schedule_id, now)
    if row is None:
        return False
    if row.schedulable():
        compiled = row.compiled()
        while (slot := compiled.next_slot(row.cursor)) is not None and slot.actual <= now:
            row.cursor = slot.nominal
            if now - slot.actual > row.catchup_window:
                row.missed_catchup_window += 1
                continue
            row.buffer.append(BufferedStart(slot.nominal, slot.actual))
    else:  # paused or out of actions: the time passes untaken
        row.cursor = max(row.cursor, now)
    row = await _run_buffer(tx, row, now, fx)
    await _save(tx, row, now, fx)
    return True


async def postpone(tx: Tx, namespace: str, schedule_id: str, when: float, fx: Effects) -> None:
    """A firing failed: look at the schedule again at ``when``, not at once."""
    row = await tx.get_schedule(namespace, schedule_id)
    if row is not None and row.next_fire is not None:
        row.next_fire = max(row.next_fire, when)
        fx.wake(row.next_fire)
        await tx.update_schedule(row)


async def _run_buffer(tx: Tx, row: ScheduleRow, now: float, fx: Effects) -> ScheduleRow:
    """Start what the overlap policies let start now; returns the row (read again if a
    terminated run's close changed it)."""
    while row.buffer:
        if row.running:
            still = await tx.open_workflow_ids(row.namespace, [w for w, _ in row.running])
            row.running = [r for r in row.running if r[0] in still]
        plan = buffering.plan(row.buffer, bool(row.running), row.overlap)
        row.buffer = plan.buffer
        row.skipped_overlap += plan.skipped
        for start in [*plan.overlapping, *([plan.start] if plan.start else [])]:
            if not start.manual:
                if not row.schedulable():
                    continue  # paused, or no actions left: dropped
                if row.limited_actions:
                    row.remaining_actions -= 1
                    row.version += 1
            result = await _start(tx, row, start, now, fx)
            if result is None:
                continue
            row.num_actions += 1
            row.recent = [*row.recent, result][-RECENT_ACTIONS:]
            if start is plan.start:
                row.running.append((result.workflow_id, result.run_id))
        if plan.terminate and row.running:
            # The runs' closes read and write the row: it is written first, read after.
            await _save(tx, row, now, fx)
            for workflow_id, _ in list(row.running):
                ex = await tx.get_open_execution(row.namespace, workflow_id)
                if ex is not None:
                    reason = f"Terminated by schedule {row.schedule_id!r} (TERMINATE_OTHER)"
                    await executions.terminate(tx, ex, reason, _identity(row), now, fx)
            row = await _find(tx, row.namespace, row.schedule_id)
            row.running = []
            continue
        if plan.cancel:
            for workflow_id, _ in row.running:
                ex = await tx.get_open_execution(row.namespace, workflow_id)
                if ex is not None and not ex.cancel_requested:
                    reason = f"Cancelled by schedule {row.schedule_id!r} (CANCEL_OTHER)"
                    await executions.request_cancel(
                        tx, row.namespace, workflow_id, None, reason, _identity(row), now, fx
                    )
        break
    return row


def _identity(row: ScheduleRow) -> str:
    return f"perdure-scheduler/{row.namespace}/{row.schedule_id}"


async def _start(
    tx: Tx, row: ScheduleRow, start: BufferedStart, now: float, fx: Effects
) -> ActionResult | None:
    """Start the workflow of one slot; None if its id is taken (the start is dropped)."""
    a = row.action
    workflow_id = f"{a.workflow_id}-{nominal_id(start.nominal)}"
    attributes = dict(a.search_attributes or {})
    attributes[SCHEDULED_BY_ID] = {"type": "Keyword", "values": [row.schedule_id]}
    moment = datetime.fromtimestamp(int(start.nominal), UTC).isoformat()
    attributes[SCHEDULED_START_TIME] = {"type": "Datetime", "values": [moment]}
    request = StartWorkflowRequest(
        namespace=row.namespace,
        workflow_id=workflow_id,
        workflow_type=a.workflow_type,
        task_queue=a.task_queue,
        input=a.input,
        run_id=new_run_id(),
        task_timeout=a.task_timeout or 10.0,
        execution_timeout=a.execution_timeout,
        run_timeout=a.run_timeout,
        # A slot starts once; asked-for starts may repeat a slot (a backfill over it).
        id_reuse_policy=(
            WorkflowIDReusePolicy.ALLOW_DUPLICATE
            if start.manual
            else WorkflowIDReusePolicy.REJECT_DUPLICATE
        ),
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        memo=a.memo,
        identity=_identity(row),
        retry_policy=a.retry_policy,
        search_attributes=attributes,
        priority=a.priority,
    )
    try:
        started = await starts.start_workflow(tx, request, now, fx)
    except WorkflowAlreadyStartedError:
        log.warning(
            "Schedule %r did not start workflow %r: that id is already taken",
            row.schedule_id,
            workflow_id,
        )
        return None
    return ActionResult(start.actual, now, workflow_id, started.run_id)


def overlap_value(policy: ScheduleOverlapPolicy | int | None) -> int:
    """A policy as stored (0: the schedule's own)."""
    return int(policy) if policy else 0
