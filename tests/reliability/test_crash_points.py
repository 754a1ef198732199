"""Named crash points (RELIABILITY.md section 1, the deterministic companion): each worker
process dies (``os._exit(137)``) at a named point of the engine (``PERDURE_CRASH_AT``) and is
started again without it; every workflow still completes once, with the reference result.

The points reached are recorded in a file, and the test asserts that every point was hit:
a point renamed in the engine cannot silently stop being tested.
"""

from __future__ import annotations

import random
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
        names = {f"crash-{point}": point for point in crashpoints.POINTS}
        for name, point in names.items():
            workers.spawn(
                name,
                env={
                    crashpoints.CRASH_AT: f"{point}:{rng.randint(1, 2)}",
                    crashpoints.CRASH_HITS: hits,
                },
            )
        inputs = {f"c-{i}": rng.randrange(1_000_000) for i in range(9)}
        await start_all(client, inputs, 3)
        crashed: set[str] = set()

        def respawn_crashed() -> bool:
            for name in names:
                proc = workers.procs[name]
                if name not in crashed and proc.poll() == crashpoints.EXIT_CODE:
                    crashed.add(name)
                    workers.killed_pids.add(proc.pid)
                    workers.spawn(name)  # again, without the crash point
            return len(crashed) == len(names)

        await poll_until("every worker reached its crash point", respawn_crashed, logs=workers)
        await wait_all(client, inputs, 60.0, workers)
        report = await check_torture(client, inputs, 3, ledger, killed_pids=workers.killed_pids)
        assert report.problems() == [], (rerun_hint(seed), report.figures(), workers.logs())
        assert sorted(crashpoints.hits(hits)) == sorted(crashpoints.POINTS)
        assert workers.dead() == [], workers.logs()
    finally:
        workers.stop_all()
        await client.close()
        ledger.close()
