"""Every integration test runs on both stores: ``env`` and ``real_env`` are parametrized over
an in-memory SQLite database and a PostgreSQL schema of the test's own."""

from collections.abc import AsyncIterator

import pytest
from pgutil import fresh_schema

from perdure.testing import WorkflowEnvironment

STORES = ["sqlite", "postgresql"]


@pytest.fixture(params=STORES)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping environment: the engine on a virtual clock."""
    if request.param == "sqlite":
        env = await WorkflowEnvironment.start_time_skipping()
        try:
            yield env
        finally:
            await env.shutdown()
        return
    async with fresh_schema() as url:
        env = await WorkflowEnvironment.start_time_skipping(url=url)
        try:
            yield env
        finally:
            await env.shutdown()


@pytest.fixture(params=STORES)
async def real_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    """An environment on the real clock, for the few tests of timeouts that fire while an
    activity runs (the virtual clock stands still then)."""
    if request.param == "sqlite":
        env = await WorkflowEnvironment.start_local()
        try:
            yield env
        finally:
            await env.shutdown()
        return
    async with fresh_schema() as url:
        env = await WorkflowEnvironment.start_local(url)
        try:
            yield env
        finally:
            await env.shutdown()
