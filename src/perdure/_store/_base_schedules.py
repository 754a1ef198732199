"""The store's schedule operations (``Store`` inherits them): each one transaction, its
rules in ``_schedules``."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TypeVar

from perdure._common.clock import Clock
from perdure._errors import ScheduleNotFoundError
from perdure._store import _schedules as schedules
from perdure._store._effects import Effects
from perdure._store._schedule_state import ScheduleRow
from perdure._store._schedules import Backfill
from perdure._store._tx import Tx

T = TypeVar("T")
log = logging.getLogger("perdure.schedules")


class ScheduleOps(ABC):
    """Create, read, change and fire schedules."""

    clock: Clock

    @abstractmethod
    async def transact(self, fn: Callable[[Tx, Effects], Awaitable[T]]) -> T: ...

    @abstractmethod
    async def read(self, fn: Callable[[Tx], Awaitable[T]]) -> T: ...

    async def create_schedule(
        self, row: ScheduleRow, trigger_immediately: bool, backfills: list[Backfill]
    ) -> None:
        await self.transact(
            lambda tx, fx: schedules.create(
                tx, row, trigger_immediately, backfills, self.clock.now(), fx
            )
        )

    async def describe_schedule(self, namespace: str, schedule_id: str) -> ScheduleRow:
        """The schedule as it stands (``ScheduleNotFoundError`` if there is none)."""

        async def op(tx: Tx) -> ScheduleRow:
            row = await tx.get_schedule(namespace, schedule_id)
            if row is None:
                raise ScheduleNotFoundError(
                    f"No schedule with id {schedule_id!r} in namespace {namespace!r}"
                )
            return row

        return await self.read(op)

    async def list_schedules(self, namespace: str, limit: int, offset: int) -> list[ScheduleRow]:
        return await self.read(lambda tx: tx.list_schedules(namespace, limit, offset))

    async def trigger_schedule(self, namespace: str, schedule_id: str, overlap: int) -> None:
        await self.transact(
            lambda tx, fx: schedules.trigger(
                tx, namespace, schedule_id, overlap, self.clock.now(), fx
            )
        )

    async def backfill_schedule(
        self, namespace: str, schedule_id: str, backfills: list[Backfill]
    ) -> None:
        await self.transact(
            lambda tx, fx: schedules.backfill(
                tx, namespace, schedule_id, backfills, self.clock.now(), fx
            )
        )

    async def pause_schedule(
        self, namespace: str, schedule_id: str, paused: bool, note: str
    ) -> None:
        await self.transact(
            lambda tx, fx: schedules.set_paused(
                tx, namespace, schedule_id, paused, note, self.clock.now(), fx
            )
        )

    async def update_schedule(
        self, new: ScheduleRow, version: int, set_search_attributes: bool
    ) -> bool:
        """Replace the schedule's definition unless it changed since ``version``; returns
        whether it did."""
        return await self.transact(
            lambda tx, fx: schedules.update(
                tx, new, version, set_search_attributes, self.clock.now(), fx
            )
        )

    async def delete_schedule(self, namespace: str, schedule_id: str) -> None:
        await self.transact(lambda tx, fx: schedules.delete(tx, namespace, schedule_id, fx))

    async def fire_schedules(self, due: list[tuple[str, str]]) -> int:
        """Fire these schedules (found due), each in its own operation (group-committed, so
        that one failing does not hold the others back); returns how many."""
        if not due:
            return 0

        async def fire_one(namespace: str, schedule_id: str) -> None:
            try:
                await self.transact(
                    lambda tx, fx: schedules.fire(tx, namespace, schedule_id, self.clock.now(), fx)
                )
            except Exception:
                log.exception(
                    "Firing schedule %r failed; trying again in %.0fs",
                    schedule_id,
                    schedules.RETRY_AFTER_FAILURE,
                )
                when = self.clock.now() + schedules.RETRY_AFTER_FAILURE
                await self.transact(
                    lambda tx, fx: schedules.postpone(tx, namespace, schedule_id, when, fx)
                )

        await asyncio.gather(*(fire_one(ns, sid) for ns, sid in due))
        return len(due)
