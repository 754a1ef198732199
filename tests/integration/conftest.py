"""Every integration test runs on both stores: ``env`` and ``real_env`` are parametrized over
an in-memory SQLite database and a PostgreSQL schema of the test's own.

After each test, every workflow it closed is replayed against the code as it is at the end of
the test (as the pytest plugin does for users), so a workflow that is not deterministic fails
the test that ran it. A test that changes a workflow's code on purpose is marked
``perdure_no_replay``.
"""

import os
from collections.abc import AsyncIterator

import pytest
from pgutil import fresh_schema

from perdure.converter import (
    AesGcmCodec,
    CompositeCodec,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    ZlibCodec,
)
from perdure.testing import WorkflowEnvironment
from perdure.testing._replay_check import replay_closed_workflows

STORES = ["sqlite", "postgresql"]


async def _finish(env: WorkflowEnvironment, request: pytest.FixtureRequest) -> None:
    try:
        if request.node.get_closest_marker("perdure_no_replay") is None:
            _, failures = await replay_closed_workflows(env.client)
            if failures:
                pytest.fail("\n".join(str(f) for f in failures), pytrace=False)
    finally:
        await env.shutdown()


@pytest.fixture(params=STORES)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping environment: the engine on a virtual clock."""
    if request.param == "sqlite":
        env = await WorkflowEnvironment.start_time_skipping()
        try:
            yield env
        finally:
            await _finish(env, request)
        return
    async with fresh_schema() as url:
        env = await WorkflowEnvironment.start_time_skipping(url=url)
        try:
            yield env
        finally:
            await _finish(env, request)


@pytest.fixture(params=STORES)
async def real_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    """An environment on the real clock, for the few tests of real time (timeouts of running
    activities are tested on both clocks)."""
    if request.param == "sqlite":
        env = await WorkflowEnvironment.start_local()
        try:
            yield env
        finally:
            await _finish(env, request)
        return
    async with fresh_schema() as url:
        env = await WorkflowEnvironment.start_local(url)
        try:
            yield env
        finally:
            await _finish(env, request)


@pytest.fixture(params=STORES)
async def codec_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    """Like ``env``, with every payload compressed and encrypted and failure messages and
    stack traces encoded (``ENCRYPTING`` below)."""
    if request.param == "sqlite":
        env = await WorkflowEnvironment.start_time_skipping(data_converter=ENCRYPTING)
        try:
            yield env
        finally:
            await _finish(env, request)
        return
    async with fresh_schema() as url:
        env = await WorkflowEnvironment.start_time_skipping(url=url, data_converter=ENCRYPTING)
        try:
            yield env
        finally:
            await _finish(env, request)


ENCRYPTING = DataConverter(
    payload_codec=CompositeCodec([ZlibCodec(), AesGcmCodec(os.urandom(32), key_id="test")]),
    failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
)
