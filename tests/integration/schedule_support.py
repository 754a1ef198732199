"""What the schedule tests share: an environment on a virtual clock that starts at a fixed
time (on SQLite and on PostgreSQL), workflows that run for a while, and readers of what a
schedule started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from pgutil import fresh_schema

from perdure import workflow
from perdure.client import Client, WorkflowExecutionStatus
from perdure.exceptions import ApplicationError
from perdure.testing import WorkflowEnvironment
from perdure.testing._replay_check import replay_closed_workflows

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, 00:00 UTC
QUEUE = "scheduled"


@asynccontextmanager
async def schedule_env(store: str, start: datetime = START) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping environment whose clock starts at ``start``; the workflows it closed
    are replayed at the end (as the ``env`` fixture does)."""
    if store == "sqlite":
        env = await WorkflowEnvironment.start_time_skipping(start_time=start)
        async with env:
            yield env
            _, failures = await replay_closed_workflows(env.client)
            if failures:
                pytest.fail("\n".join(str(f) for f in failures), pytrace=False)
        return
    async with fresh_schema() as url:
        env = await WorkflowEnvironment.start_time_skipping(start_time=start, url=url)
        async with env:
            yield env
            _, failures = await replay_closed_workflows(env.client)
            if failures:
                pytest.fail("\n".join(str(f) for f in failures), pytrace=False)


@workflow.defn
class Job:
    """Runs for ``minutes`` of workflow time, then returns them."""

    @workflow.run
    async def run(self, minutes: int) -> int:
        await workflow.sleep(timedelta(minutes=minutes))
        return minutes


@workflow.defn
class Broken:
    @workflow.run
    async def run(self, message: str) -> None:
        raise ApplicationError(message, non_retryable=True)


WORKFLOWS = [Job, Broken]


async def started(client: Client, schedule_id: str) -> dict[str, WorkflowExecutionStatus]:
    """The workflows the schedule started, by id, with their status."""
    out = {}
    query = f"TemporalScheduledById = '{schedule_id}'"
    async for ex in client.list_workflows(query):
        out[ex.id] = ex.status
    return dict(sorted(out.items()))


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
