"""``result()`` of a known run watches for its close before it reads the run: one read when
the run is closed already, two when it closes while waited for (the read that checked again
after the watch began is gone), and a close between the read and the wait is not missed."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from perdure import Worker, workflow
from perdure.testing import WorkflowEnvironment


@workflow.defn
class Waits:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def release(self) -> None:
        self.go = True

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.go)
        return "released"


def counting(store: Any, counts: collections.Counter[str]) -> None:
    for name in ("describe", "closed_among"):
        original = getattr(store, name)

        async def counted(*args: Any, _name: str = name, _fn: Any = original, **kw: Any) -> Any:
            counts[_name] += 1
            return await _fn(*args, **kw)

        setattr(store, name, counted)


async def test_result_reads_a_known_run_once_closed_and_twice_when_it_waits(
    real_env: WorkflowEnvironment,
) -> None:
    client = real_env.client
    counts: collections.Counter[str] = collections.Counter()
    async with Worker(client, task_queue="q", workflows=[Waits]):
        handle = await client.start_workflow(Waits.run, id="w", task_queue="q")
        counting(client.store, counts)
        waiting = asyncio.ensure_future(handle.result())
        for _ in range(200):  # until the wait has begun
            if counts["describe"]:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await handle.signal(Waits.release)
        assert await waiting == "released"
        assert counts == {"describe": 2}
        counts.clear()
        assert await handle.result() == "released"
        assert counts == {"describe": 1}


async def describe_when_closed(describe: Any, args: Any, kw: Any) -> None:
    for _ in range(1000):
        if not (await describe(*args, **kw)).is_open:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the run did not close")


async def test_a_close_between_the_read_and_the_wait_is_not_missed(
    real_env: WorkflowEnvironment,
) -> None:
    client = real_env.client
    async with Worker(client, task_queue="q", workflows=[Waits]):
        handle = await client.start_workflow(Waits.run, id="w", task_queue="q")
        store = client.store
        store.closed_poll_interval = 3600.0  # a missed close would wait for good
        describe = store.describe
        signalled = [False]

        async def then_close(*args: Any, **kw: Any) -> Any:
            ex = await describe(*args, **kw)
            if not signalled[0]:  # read open; the run closes before the wait begins
                signalled[0] = True
                await handle.signal(Waits.release)
                await describe_when_closed(describe, args, kw)
            return ex

        store.describe = then_close  # type: ignore[method-assign]
        assert await asyncio.wait_for(handle.result(), 5) == "released"
