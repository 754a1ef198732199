"""Named crash points (RELIABILITY.md section 1, the deterministic companion): each worker
process dies (``os._exit(137)``) at a named point of the engine (``PERDURE_CRASH_AT``) and is
started again without it; every workflow still completes once, with the reference result.

The points reached are recorded in a file, and the test asserts that every point was hit:
a point renamed in the engine cannot silently stop being tested.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from harness import app, crashpoints, rerun_hint
from harness.ledger import Ledger
from harness.workers import Workers, check_torture, poll_until, wait_all

from perdure import Client

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]

SLOW_ACTIVITIES = {"PERDURE_ACTIVITY_MIN_S": "0.02", "PERDURE_ACTIVITY_MAX_S": "0.1"}


async def test_every_crash_point(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    hits = str(tmp_path / "hits.txt")
    ledger = Ledger(str(tmp_path / "ledger.db"))
    workers = Workers(tmp_path, url, ledger.path, env=SLOW_ACTIVITIES)
    client = await Client.connect(url)
    try:
        # Each point on a worker of its own queue, so that it certainly gets there; all at
        # once (starting a process is what costs).
        inputs: dict[str, int] = {}
        procs = {}
        for point in crashpoints.WORKER_POINTS:
            k = rng.randint(1, 2)
            for i in range(2):
                wid = f"{point}-{i}"
                inputs[wid] = rng.randrange(1_000_000)
                await app.start(client, wid, inputs[wid], 3, task_queue=point)
            procs[point] = workers.spawn(
                f"crash-{point}",
                env={crashpoints.CRASH_AT: f"{point}:{k}", crashpoints.CRASH_HITS: hits},
                task_queue=point,
            )
        for point, proc in procs.items():
            await poll_until(
                f"the worker dies at {point}",
                lambda p=proc: p.poll() == crashpoints.EXIT_CODE,
                logs=workers,
            )
            workers.kill_times[proc.pid] = time.time()
            workers.spawn(f"after-{point}", task_queue=point)
        await wait_all(client, inputs, 60.0, workers)
        report = await check_torture(client, inputs, 3, ledger, kill_times=workers.kill_times)
        assert report.problems() == [], (rerun_hint(seed), report.figures(), workers.logs())
        assert sorted(crashpoints.hits(hits)) == sorted(crashpoints.WORKER_POINTS)
        assert [n for n in workers.dead() if not n.startswith("crash-")] == [], workers.logs()
    finally:
        workers.stop_all()
        await client.close()
        ledger.close()
