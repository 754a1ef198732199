"""The schedule methods of ``Client`` (it inherits them): create, get a handle, list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from perdure._common import identifiers as ids
from perdure._store import _schedules as rules
from perdure.client._inputs import CreateScheduleInput
from perdure.client._schedule import ClientLike, Schedule, ScheduleBackfill
from perdure.client._schedule_handle import ScheduleAsyncIterator, ScheduleHandle, schedule_row
from perdure.common._search_attributes import TypedSearchAttributes


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ScheduleClient:
    """Temporal's schedule methods of a client."""

    async def create_schedule(
        self: ClientLike,
        id: str,
        schedule: Schedule,
        *,
        trigger_immediately: bool = False,
        backfill: Sequence[ScheduleBackfill] = (),
        memo: dict[str, Any] | None = None,
        search_attributes: TypedSearchAttributes | None = None,
    ) -> ScheduleHandle:
        """Create a schedule; workers on this database take its actions (see
        ``docs/schedules.md``).

        Raises:
            ScheduleAlreadyRunningError: a schedule of that id exists.
            InvalidArgumentError: the spec or action is malformed.
        """
        call = CreateScheduleInput(
            id, schedule, trigger_immediately, backfill, memo, search_attributes
        )
        handle: ScheduleHandle = await self._outbound.create_schedule(call)
        return handle

    def get_schedule_handle(self: ClientLike, id: str) -> ScheduleHandle:
        """A handle to the schedule ``id`` (not checked until used)."""
        return ScheduleHandle(self, ids.check_workflow_id(id, "id"))

    async def list_schedules(
        self: ClientLike, query: str | None = None, *, page_size: int = 1000
    ) -> ScheduleAsyncIterator:
        """The namespace's schedules, by id: ``async for s in await client.list_schedules()``.

        ``query`` filters them with the visibility language on ``ScheduleId``,
        ``WorkflowType``, ``TemporalSchedulePaused`` and the schedules' search attributes.

        Raises:
            VisibilityQueryError: a malformed query.
        """
        return ScheduleAsyncIterator(self, page_size, query)


async def create_schedule(
    client: ClientLike,
    id: str,
    schedule: Schedule,
    *,
    trigger_immediately: bool = False,
    backfill: Sequence[ScheduleBackfill] = (),
    memo: dict[str, Any] | None = None,
    search_attributes: TypedSearchAttributes | None = None,
) -> ScheduleHandle:
    """What the end of the interceptor chain does for ``Client.create_schedule``."""
    row = await schedule_row(client, id, schedule, memo, search_attributes)
    handle = ScheduleHandle(client, id)
    periods = [
        rules.Backfill(
            _aware(b.start_at).timestamp(),
            _aware(b.end_at).timestamp(),
            rules.overlap_value(b.overlap),
        )
        for b in backfill
    ]
    await client.store.create_schedule(row, trigger_immediately, periods)
    return handle
