"""The store under test, on each store the ``db_url`` fixture gives, on a virtual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from perdure._common.clock import VirtualClock
from perdure._store import Store, open_store


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
