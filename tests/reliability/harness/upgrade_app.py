"""The mixed-version upgrade's workflows (RELIABILITY.md section 7), importable by an older
perdure and by the current one.

``python -m harness.upgrade_app old URL N`` runs in a process whose ``PYTHONPATH`` holds an
older commit's ``src`` (``git archive``): it starts ``N`` ``Upgrade`` workflows on the
database at ``URL`` (created at that commit's schema version) and one ``Upgrade`` that it
sees to the end, runs a worker with ``UpgradeV1`` until each of the ``N`` has run its first
activity and waits for its ``go`` signal, prints ``READY`` and waits to be killed.

The current code then continues them with ``UpgradeV2``, which guards its changes with
``workflow.patched``: one change before the wait (replayed: the old path) and one after it
(run fresh: the new path).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

from perdure import Client, Worker, activity, workflow

QUEUE = "upgrade"
NAME = "Upgrade"
OPTS = {"start_to_close_timeout": timedelta(seconds=30)}
DONE_ID = "upgrade-done"


@activity.defn
async def step(name: str) -> str:
    return name


@workflow.defn(name=NAME)
class UpgradeV1:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self) -> list[str]:
        done = [await workflow.execute_activity(step, "a", **OPTS)]
        await workflow.wait_condition(lambda: self.go)
        done.append(await workflow.execute_activity(step, "b", **OPTS))
        return done


@workflow.defn(name=NAME)
class UpgradeV2:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self) -> list[str]:
        done = [await workflow.execute_activity(step, "a", **OPTS)]
        if workflow.patched("upgrade-early"):
            done.append(await workflow.execute_activity(step, "early", **OPTS))
        await workflow.wait_condition(lambda: self.go)
        if workflow.patched("upgrade-late"):
            done.append(await workflow.execute_activity(step, "late", **OPTS))
        done.append(await workflow.execute_activity(step, "b", **OPTS))
        return done


def ids(n: int) -> list[str]:
    return [f"upgrade-{i}" for i in range(n)]


async def _old(url: str, n: int) -> None:
    import perdure

    print(f"perdure {Path(perdure.__file__).parent.parent}", flush=True)
    client = await Client.connect(url)
    async with Worker(client, task_queue=QUEUE, workflows=[UpgradeV1], activities=[step]):
        done = await client.start_workflow(UpgradeV1.run, id=DONE_ID, task_queue=QUEUE)
        handles = [
            await client.start_workflow(UpgradeV1.run, id=wid, task_queue=QUEUE) for wid in ids(n)
        ]
        await done.signal(UpgradeV1.proceed)
        await done.result()
        for handle in handles:  # until each ran "a" and its workflow task after it
            while True:
                events = list((await handle.fetch_history()).events)
                kinds = [str(getattr(e.event_type, "value", e.event_type)) for e in events]
                if "ActivityTaskCompleted" in kinds and kinds[-1] == "WorkflowTaskCompleted":
                    break
                await asyncio.sleep(0.05)
        print("READY", flush=True)
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    if sys.argv[1:2] != ["old"]:
        sys.exit("usage: python -m harness.upgrade_app old URL N")
    asyncio.run(_old(sys.argv[2], int(sys.argv[3])))
