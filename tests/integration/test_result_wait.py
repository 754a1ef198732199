"""``result()`` of a known run watches for its close before it reads the run: one read when
the run is closed already, and one when it closes while waited for in this process (the
commit that closes it hands the closed run to its waiters); two when another process closes
it. A close between the read and the wait is not missed."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

from perdure import Client, Worker, workflow
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


async def waiting_result(handle: Any, counts: collections.Counter[str]) -> asyncio.Future[Any]:
    """``handle.result()`` under way, once it has read the run (open) and waits."""
    waiting = asyncio.ensure_future(handle.result())
    for _ in range(200):
        if counts["describe"]:
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    assert not waiting.done()
    return waiting


async def test_result_reads_a_known_run_once_closed_or_closing_here(
    real_env: WorkflowEnvironment,
) -> None:
    client = real_env.client
    counts: collections.Counter[str] = collections.Counter()
    async with Worker(client, task_queue="q", workflows=[Waits]):
        handle = await client.start_workflow(Waits.run, id="w", task_queue="q")
        counting(client.store, counts)
        waiting = await waiting_result(handle, counts)
        await handle.signal(Waits.release)
        assert await waiting == "released"
        # The closing commit handed the closed run over: no read after it.
        assert counts == {"describe": 1}
        counts.clear()
        assert await handle.result() == "released"
        assert counts == {"describe": 1}


async def test_a_run_closed_by_another_process_is_read_once_more(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    waiter, runner = await Client.connect(url), await Client.connect(url)
    counts: collections.Counter[str] = collections.Counter()
    try:
        async with Worker(runner, task_queue="q", workflows=[Waits]):
            await runner.start_workflow(Waits.run, id="w", task_queue="q")
            counting(waiter.store, counts)
            waiting = await waiting_result(waiter.get_workflow_handle("w"), counts)
            await runner.get_workflow_handle("w").signal(Waits.release)
            assert await asyncio.wait_for(waiting, 10) == "released"
            # Woken by the other store's wake-up (a run id, not the run): read again.
            assert counts["describe"] == 3  # the latest run's id, open, then closed
    finally:
        await waiter.close()
        await runner.close()


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
