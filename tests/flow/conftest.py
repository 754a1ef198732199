"""The store under test, on each store the ``db_url`` fixture gives, on a virtual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from perdure._common.clock import VirtualClock
from perdure._store import Store, open_store
from perdure.testing import WorkflowEnvironment


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(1_000_000.0)


@pytest.fixture
async def store(db_url: str, clock: VirtualClock) -> AsyncIterator[Store]:
    s = open_store(db_url, clock)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def env(db_url: str) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping environment on the test's database (SQLite file or PostgreSQL)."""
    environment = await WorkflowEnvironment.start_time_skipping(url=db_url)
    try:
        yield environment
    finally:
        await environment.shutdown()
