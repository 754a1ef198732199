"""Handlers registered by workflow code as it runs, and the code Temporal's resource_pool
sample builds on them: typed arguments, ``get_signal_handler``, and async context managers
in workflow code."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from perdure import Worker, workflow
from perdure.testing import WorkflowEnvironment


@dataclass
class Grant:
    resource: str
    key: int


class PoolClient:
    """As the resource_pool sample's client: registers its own signal handler, once."""

    def __init__(self, pool: str) -> None:
        self.signal = f"assign_{pool}"
        self.grants: list[Grant] = []
        if workflow.get_signal_handler(self.signal) is not None:
            raise RuntimeError(f"{self.signal} already registered")
        workflow.set_signal_handler(self.signal, self._on_grant)
        workflow.set_query_handler("grant_keys", self._keys)

    def _on_grant(self, grant: Grant) -> None:
        self.grants.append(grant)

    def _keys(self, grant: Grant) -> list[int]:
        return [g.key for g in self.grants if g.resource == grant.resource]

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Grant]:
        await workflow.wait_condition(lambda: bool(self.grants))
        try:
            yield self.grants[-1]
        finally:
            await workflow.sleep(60)  # releasing takes a durable step


@workflow.defn
class UsesPool:
    @workflow.run
    async def run(self) -> list[str]:
        pool = PoolClient("pool-1")
        found = [
            type(workflow.get_signal_handler(pool.signal)).__name__,
            str(workflow.get_signal_handler("other")),
            workflow.get_query_handler("grant_keys").__name__,  # type: ignore[union-attr]
            workflow.get_query_handler("state").__name__,  # type: ignore[union-attr]
        ]
        try:
            PoolClient("pool-1")
        except RuntimeError as exc:
            found.append(str(exc))
        async with pool.acquire() as grant:
            found.append(f"holding {grant.resource}")
        return found

    @workflow.query
    def state(self) -> str:
        return "running"


async def test_run_time_handlers_get_typed_arguments_and_are_found_by_name(
    env: WorkflowEnvironment,
) -> None:
    async with Worker(env.client, task_queue="q", workflows=[UsesPool]):
        handle = await env.client.start_workflow(UsesPool.run, id="u", task_queue="q")
        await handle.signal("assign_pool-1", Grant("r_a", 7))
        assert await handle.query("grant_keys", Grant("r_a", 0)) == [7]
        result = await handle.result()

    assert result == [
        "method",
        "None",
        "_keys",
        "state",
        "assign_pool-1 already registered",
        "holding r_a",
    ]


async def test_an_evicted_workflow_s_async_generators_stay_out_of_the_worker_s_loop(
    env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    # No cache: the instance is dropped after each task, its suspended code collected.
    async with Worker(env.client, task_queue="q", workflows=[UsesPool], max_cached_workflows=0):
        handle = await env.client.start_workflow(UsesPool.run, id="u", task_queue="q")
        await env.sleep(0)
        gc.collect()
        await handle.signal("assign_pool-1", Grant("r_b", 8))
        assert (await handle.result())[-1] == "holding r_b"
        gc.collect()
        await asyncio.sleep(0)
        gc.collect()

    loop_errors = [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert loop_errors == []
