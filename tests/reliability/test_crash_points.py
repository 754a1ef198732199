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
from harness import crashpoints, rerun_hint
from harness.ledger import Ledger
from harness.workers import Workers, check_torture, poll_until, start_all, wait_all

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
        inputs = {f"c-{i}": rng.randrange(1_000_000) for i in range(6)}
        await start_all(client, inputs, 3)
        # One point at a time, on the only worker running, so that it certainly gets there.
        for point in crashpoints.POINTS:
            k = rng.randint(1, 2)
            proc = workers.spawn(
                f"crash-{point}",
                env={crashpoints.CRASH_AT: f"{point}:{k}", crashpoints.CRASH_HITS: hits},
            )
            await poll_until(
                f"the worker dies at {point}:{k}",
                lambda p=proc: p.poll() == crashpoints.EXIT_CODE,
                logs=workers,
            )
            workers.kill_times[proc.pid] = time.time()
        workers.spawn("after")
        await wait_all(client, inputs, 60.0, workers)
        report = await check_torture(client, inputs, 3, ledger, kill_times=workers.kill_times)
        assert report.problems() == [], (rerun_hint(seed), report.figures(), workers.logs())
        assert sorted(crashpoints.hits(hits)) == sorted(crashpoints.POINTS)
        assert [n for n in workers.dead() if not n.startswith("crash-")] == [], workers.logs()
    finally:
        workers.stop_all()
        await client.close()
        ledger.close()
