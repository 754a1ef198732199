"""``ScheduleHandle`` and ``ScheduleAsyncIterator``, and the conversion of schedules to and
from the store's rows (arguments and memo encoded by the client's data converter)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from perdure._common import identifiers as ids
from perdure._common.payload import Payload
from perdure._common.schedule_cron import canonical
from perdure._common.schedule_spec import ScheduleOverlapPolicy
from perdure._errors import InvalidArgumentError
from perdure._store import _schedules as rules
from perdure._store._schedule_query import schedule_filter
from perdure._store._schedule_state import ScheduleRow, StartAction
from perdure.client._schedule import (
    ClientLike,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleInfo,
    ScheduleListActionStartWorkflow,
    ScheduleListDescription,
    ScheduleListInfo,
    ScheduleListSchedule,
    ScheduleListState,
    SchedulePolicy,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from perdure.common._priority import Priority, priority_dict
from perdure.common._retry import RetryPolicy
from perdure.common._search_attributes import TypedSearchAttributes, decode_pairs, encode_pairs

# How many times update() reads the schedule again when it changed meanwhile.
UPDATE_TRIES = 10


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


class ScheduleHandle:
    """A schedule, by id: ``client.get_schedule_handle(id)`` or what ``create_schedule``
    returns.

    Example::

        handle = client.get_schedule_handle("nightly-report")
        await handle.pause(note="migrating the warehouse")
        print((await handle.describe()).info.next_action_times)
    """

    def __init__(self, client: ClientLike, id: str) -> None:
        self._client = client
        self.id = id

    def _ns(self) -> str:
        return self._client.namespace

    async def describe(self) -> ScheduleDescription:
        """The schedule and what it has done.

        Raises:
            ScheduleNotFoundError: no schedule has this id.
        """
        row = await self._client.store.describe_schedule(self._ns(), self.id)
        return description(self._client, row)

    async def pause(self, *, note: str | None = None) -> None:
        """Stop taking scheduled actions (the slots that pass meanwhile are not taken later)."""
        await self._client.store.pause_schedule(
            self._ns(), self.id, True, note or "Paused via perdure client"
        )

    async def unpause(self, *, note: str | None = None) -> None:
        """Take scheduled actions again, from now on."""
        await self._client.store.pause_schedule(
            self._ns(), self.id, False, note or "Unpaused via perdure client"
        )

    async def trigger(self, *, overlap: ScheduleOverlapPolicy | None = None) -> None:
        """Take one action now (``overlap`` None: the schedule's policy), even if paused."""
        await self._client.store.trigger_schedule(self._ns(), self.id, rules.overlap_value(overlap))

    async def backfill(self, *backfill: ScheduleBackfill) -> None:
        """Take now the actions of past periods, as if they were passing.

        Raises:
            ValueError: no period given.
        """
        if not backfill:
            raise ValueError("At least one backfill required")
        periods = []
        for b in backfill:
            start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (b.start_at, b.end_at))
            periods.append(
                rules.Backfill(start.timestamp(), end.timestamp(), rules.overlap_value(b.overlap))
            )
        await self._client.store.backfill_schedule(self._ns(), self.id, periods)

    async def update(
        self,
        updater: Callable[
            [ScheduleUpdateInput], ScheduleUpdate | Awaitable[ScheduleUpdate | None] | None
        ],
    ) -> None:
        """Change the schedule: ``updater`` gets its description and returns the new
        schedule (or None to leave it). It is called again if the schedule changed meanwhile.

        Example::

            def later(input: ScheduleUpdateInput) -> ScheduleUpdate:
                schedule = input.description.schedule
                schedule.spec = ScheduleSpec(cron_expressions=["0 4 * * *"])
                return ScheduleUpdate(schedule=schedule)

            await handle.update(later)
        """
        store = self._client.store
        for _ in range(UPDATE_TRIES):
            row = await store.describe_schedule(self._ns(), self.id)
            update = updater(ScheduleUpdateInput(description=description(self._client, row)))
            if inspect.isawaitable(update):
                update = await update
            if update is None:
                return
            new = await schedule_row(
                self._client, self.id, update.schedule, None, update.search_attributes
            )
            if await store.update_schedule(new, row.version, update.search_attributes is not None):
                return
        raise InvalidArgumentError(
            f"Schedule {self.id!r} kept changing while it was being updated "
            f"({UPDATE_TRIES} tries): try again"
        )

    async def delete(self) -> None:
        """Delete the schedule (the workflows it started run on)."""
        await self._client.store.delete_schedule(self._ns(), self.id)


async def schedule_row(
    client: ClientLike,
    schedule_id: str,
    schedule: Schedule,
    memo: dict[str, Any] | None,
    search_attributes: TypedSearchAttributes | None,
) -> ScheduleRow:
    """The store's row for ``schedule``, checked, its values encoded.

    Raises:
        InvalidArgumentError: something in it perdure cannot take.
        ValueError: ``limited_actions`` and ``remaining_actions`` disagree.
    """
    ids.check_workflow_id(schedule_id, "id")
    action = schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow):
        raise InvalidArgumentError(
            f"A schedule's action is a ScheduleActionStartWorkflow, not {action!r}"
        )
    state = schedule.state
    if state.limited_actions and not state.remaining_actions:
        raise ValueError("Must set limited actions to false if there are no remaining actions set")
    if not state.limited_actions and state.remaining_actions:
        raise ValueError("Must set limited actions to true if there are remaining actions set")
    # The id a run gets must fit: the action's id and its slot's time.
    ids.check_workflow_id(f"{action.id}-2000-01-01T00:00:00Z", "ScheduleActionStartWorkflow id")
    converter = client.data_converter
    values = [a for a in action.args if not isinstance(a, Payload)]
    encoded = iter(await converter.encode(values))
    payloads = [a if isinstance(a, Payload) else next(encoded) for a in action.args]
    memo_payloads = None
    if action.memo:
        memo_values = [v for v in action.memo.values() if not isinstance(v, Payload)]
        encoded_memo = iter(await converter.encode(memo_values))
        memo_payloads = {
            k: v if isinstance(v, Payload) else next(encoded_memo) for k, v in action.memo.items()
        }
    policy = schedule.policy
    if policy.catchup_window < timedelta(seconds=10):
        raise InvalidArgumentError(
            f"SchedulePolicy.catchup_window is at least 10 seconds (Temporal's floor), not "
            f"{policy.catchup_window}"
        )
    return ScheduleRow(
        namespace=client.namespace,
        schedule_id=schedule_id,
        action=StartAction(
            workflow_type=ids.check_workflow_type(action.workflow),
            workflow_id=ids.check_workflow_id(action.id),
            task_queue=ids.check_task_queue(action.task_queue),
            input=payloads,
            execution_timeout=_seconds(action.execution_timeout),
            run_timeout=_seconds(action.run_timeout),
            task_timeout=_seconds(action.task_timeout),
            retry_policy=action.retry_policy.to_dict() if action.retry_policy else None,
            memo=memo_payloads,
            search_attributes=(
                encode_pairs(action.typed_search_attributes)
                if action.typed_search_attributes
                else None
            ),
            priority=priority_dict(action.priority),
        ),
        spec=canonical(schedule.spec),
        overlap=int(policy.overlap),
        catchup_window=policy.catchup_window.total_seconds(),
        pause_on_failure=policy.pause_on_failure,
        note=state.note,
        paused=state.paused,
        limited_actions=state.limited_actions,
        remaining_actions=state.remaining_actions,
        memo=await client._encode_memo(memo),
        search_attributes=encode_pairs(search_attributes) if search_attributes else None,
    )


def _action(row: ScheduleRow) -> ScheduleActionStartWorkflow:
    a = row.action
    return ScheduleActionStartWorkflow(
        a.workflow_type,
        args=list(a.input),
        id=a.workflow_id,
        task_queue=a.task_queue,
        execution_timeout=timedelta(seconds=a.execution_timeout) if a.execution_timeout else None,
        run_timeout=timedelta(seconds=a.run_timeout) if a.run_timeout else None,
        task_timeout=timedelta(seconds=a.task_timeout) if a.task_timeout else None,
        retry_policy=RetryPolicy.from_dict(a.retry_policy) if a.retry_policy else None,
        memo=dict(a.memo) if a.memo else None,
        typed_search_attributes=decode_pairs(a.search_attributes),
        priority=Priority.from_dict(a.priority) if a.priority else None,
    )


def _results(row: ScheduleRow) -> list[ScheduleActionResult]:
    return [
        ScheduleActionResult(
            scheduled_at=_when(r.scheduled_at),
            started_at=_when(r.started_at),
            action=ScheduleActionExecutionStartWorkflow(r.workflow_id, r.run_id),
        )
        for r in row.recent
    ]


def description(client: ClientLike, row: ScheduleRow) -> ScheduleDescription:
    """What ``describe()`` returns for a row."""
    schedule = Schedule(
        action=_action(row),
        spec=replace(row.spec),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy(row.overlap),
            catchup_window=timedelta(seconds=row.catchup_window),
            pause_on_failure=row.pause_on_failure,
        ),
        state=ScheduleState(
            note=row.note,
            paused=row.paused,
            limited_actions=row.limited_actions,
            remaining_actions=row.remaining_actions,
        ),
    )
    info = ScheduleInfo(
        num_actions=row.num_actions,
        num_actions_missed_catchup_window=row.missed_catchup_window,
        num_actions_skipped_overlap=row.skipped_overlap,
        running_actions=[ScheduleActionExecutionStartWorkflow(w, r) for w, r in row.running],
        recent_actions=_results(row),
        next_action_times=[_when(t) for t in rules.next_action_times(row)],
        created_at=_when(row.created_at),
        last_updated_at=_when(row.updated_at) if row.updated_at is not None else None,
    )
    return ScheduleDescription(
        id=row.schedule_id,
        schedule=schedule,
        info=info,
        typed_search_attributes=decode_pairs(row.search_attributes),
        data_converter=client.data_converter,
        raw_memo=row.memo,
    )


def list_description(client: ClientLike, row: ScheduleRow) -> ScheduleListDescription:
    return ScheduleListDescription(
        id=row.schedule_id,
        schedule=ScheduleListSchedule(
            action=ScheduleListActionStartWorkflow(row.action.workflow_type),
            spec=replace(row.spec),
            state=ScheduleListState(note=row.note, paused=row.paused),
        ),
        info=ScheduleListInfo(
            recent_actions=_results(row),
            next_action_times=[_when(t) for t in rules.next_action_times(row)],
        ),
        typed_search_attributes=decode_pairs(row.search_attributes),
        data_converter=client.data_converter,
        raw_memo=row.memo,
    )


class ScheduleAsyncIterator:
    """What ``Client.list_schedules`` returns: ``async for`` gives each
    :class:`ScheduleListDescription`, by id, a page at a time."""

    def __init__(self, client: ClientLike, page_size: int, query: str | None = None) -> None:
        self._client = client
        self._matches = schedule_filter(query)
        self._page_size = max(page_size, 1)
        self._page: list[ScheduleListDescription] = []
        self._offset = 0
        self._done = False

    def __aiter__(self) -> ScheduleAsyncIterator:
        return self

    async def __anext__(self) -> ScheduleListDescription:
        if not self._page and not self._done:
            client = self._client
            rows = await client.store.list_schedules(
                client.namespace, self._page_size, self._offset
            )
            self._offset += len(rows)
            self._done = len(rows) < self._page_size
            self._page = [list_description(client, r) for r in rows if self._matches(r)]
            if not self._page and not self._done:
                return await self.__anext__()
        if not self._page:
            raise StopAsyncIteration
        return self._page.pop(0)
