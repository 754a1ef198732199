"""How many first workflow tasks (starts) and activity results run in the commit that made
them: N one-activity workflows (bench_core's ``OneActivity``, one process, SQLite FULL).

    python benchmarks/eager_counts.py 2000          # CACHE=4000 sets max_cached_workflows
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_core as bc

import perdure._store._base_eager as be

counts = {"start": 0, "result": 0, "start_ops": 0, "result_ops": 0}
original = be._continue_in_commit


async def counted(tx: Any, eager: Any, now: float, fx: Any) -> Any:
    out = await original(tx, eager, now, fx)
    if eager is not None and eager.offer.then is not None:
        kind = "start" if eager.offer.then._start else "result"
        counts[kind + "_ops"] += 1
        if eager.continued is not None:
            counts[kind] += 1
    return out


be._continue_in_commit = counted  # type: ignore[assignment]
if os.environ.get("CACHE"):
    bc.Worker = functools.partial(bc.Worker, max_cached_workflows=int(os.environ["CACHE"]))  # type: ignore[misc]


async def main(n: int) -> None:
    async with bc.engine() as client:
        t0 = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(bc.OneActivity.run, i, id=f"a-{i}", task_queue=bc.TASK_QUEUE)
                for i in range(n)
            )
        )
        await asyncio.gather(*(h.result() for h in handles))
        dt = time.perf_counter() - t0
    print(
        f"n={n} wall={dt:.2f}s rate={n / dt:.0f}/s in commit: starts={counts['start']} "
        f"results={counts['result']} (offers to run in the commit: starts={counts['start_ops']} "
        f"results={counts['result_ops']})"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
