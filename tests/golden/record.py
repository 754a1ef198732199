"""Record the golden histories: ``python tests/golden/record.py [NAME...]``.

Run it only to add a history for a new golden workflow (name it). Re-recording an existing
history hides exactly the breakage these files exist to catch.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from golden_workflows import (
    GOLDEN_ACTIVITIES,
    GOLDEN_WORKFLOWS,
    Order,
    ParentGolden,
    SagaGolden,
    SignalsTimersGolden,
    Stamping,
)

from perdure.client import Client
from perdure.testing import WorkflowEnvironment
from perdure.worker import Worker

HERE = Path(__file__).parent / "histories"
QUEUE = "golden"


async def saga(client: Client) -> list[str]:
    await client.execute_workflow(SagaGolden.run, Order("o-1", 42), id="saga", task_queue=QUEUE)
    return ["saga"]


async def signals_timers(client: Client) -> list[str]:
    handle = await client.start_workflow(SignalsTimersGolden.run, id="signals", task_queue=QUEUE)
    await handle.signal(SignalsTimersGolden.add, "apple")
    await handle.signal(SignalsTimersGolden.add, "pear")
    await handle.execute_update(SignalsTimersGolden.rename, args=[1, "plum"])
    await handle.signal(SignalsTimersGolden.close)
    await handle.result()
    return ["signals"]


async def parent(client: Client) -> list[str]:
    handle = await client.start_workflow(
        ParentGolden.run, args=[["ann", "bob"], 0], id="parent", task_queue=QUEUE
    )
    await handle.result()
    return ["parent", "parent-0-ann", "parent-0-bob", "parent-1-ann"]


async def headers(client: Client) -> list[str]:
    """Signals, an update, activities, children and continue-as-new, each with a header."""
    stamped = Client(**{**client.config(), "interceptors": [Stamping()]})
    handle = await stamped.start_workflow(SignalsTimersGolden.run, id="hdr", task_queue=QUEUE)
    await handle.signal(SignalsTimersGolden.add, "fig")
    await handle.execute_update(SignalsTimersGolden.rename, args=[0, "date"])
    await handle.signal(SignalsTimersGolden.close)
    await handle.result()
    await stamped.execute_workflow(
        ParentGolden.run, args=[["cy"], 0], id="hdr-parent", task_queue=QUEUE
    )
    return ["hdr", "hdr-parent", "hdr-parent-0-cy", "hdr-parent-1-cy"]


SCENARIOS: dict[str, Callable[[Client], Awaitable[list[str]]]] = {
    "saga": saga,
    "signals_timers": signals_timers,
    "parent_children": parent,
    "headers": headers,
}


async def record(names: list[str]) -> None:
    HERE.mkdir(exist_ok=True)
    for name in names:
        async with await WorkflowEnvironment.start_time_skipping() as env:
            worker = Worker(
                env.client,
                task_queue=QUEUE,
                workflows=GOLDEN_WORKFLOWS,
                activities=GOLDEN_ACTIVITIES,
                interceptors=[Stamping()] if name == "headers" else [],
            )
            async with worker:
                await SCENARIOS[name](env.client)
            async for history in env.client.list_workflows().map_histories():
                path = HERE / f"{name}.{history.workflow_id}.{history.run_id[:8]}.json"
                path.write_text(history.to_json() + "\n")
                print(f"wrote {path.relative_to(Path.cwd())} ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(record(sys.argv[1:] or list(SCENARIOS)))
