from collections.abc import AsyncIterator

import pytest

from perdure.testing import WorkflowEnvironment


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping environment: in-memory store, virtual clock."""
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def real_env() -> AsyncIterator[WorkflowEnvironment]:
    """An environment on the real clock, for the few tests of timeouts that fire while an
    activity runs (the virtual clock stands still then)."""
    env = await WorkflowEnvironment.start_local()
    try:
        yield env
    finally:
        await env.shutdown()
