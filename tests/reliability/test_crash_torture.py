"""Crash torture (RELIABILITY.md section 1), CI tier: worker processes SIGKILLed at random
moments while workflows of sequential activities run, on SQLite and PostgreSQL.

Every workflow must complete with the reference result, its history must pass the auditor,
each activity must be completed once in history and executed at least once in the ledger,
and every extra execution must come from a process that was killed. The long tier (1,000
workflows, 20 kills) is ``python -m benchmarks.torture --tier long``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from harness import rerun_hint
from harness.ledger import Ledger
from harness.workers import Workers, check_torture, kill_in_flight, start_all, wait_all

from perdure import Client

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]

WORKFLOWS = 12
STEPS = 3
WORKERS = 3
KILLS = 2
# Generous for a loaded 2-core machine; the long tier holds the drain to RELIABILITY.md's
# lease + 2 x poll interval + 10 s.
DRAIN_S = 60.0
# Activities long enough for a kill to land inside one.
SLOW_ACTIVITIES = {"PERDURE_ACTIVITY_MIN_S": "0.05", "PERDURE_ACTIVITY_MAX_S": "0.2"}


async def test_sigkill_storm(db_url: str, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    ledger = Ledger(str(tmp_path / "ledger.db"))
    workers = Workers(tmp_path, db_url, ledger.path, env=SLOW_ACTIVITIES)
    client = await Client.connect(db_url)
    try:
        for i in range(WORKERS):
            workers.spawn(f"w{i}")
        inputs = {f"t-{i}": rng.randrange(1_000_000) for i in range(WORKFLOWS)}
        await start_all(client, inputs, STEPS)
        interrupted = 0
        for k in range(1, KILLS + 1):
            # Spread over the run, each kill of a worker with an activity in flight.
            after = k * WORKFLOWS * STEPS // (KILLS + 2)
            interrupted += await kill_in_flight(workers, ledger, rng, after_done=after)
        await wait_all(client, inputs, DRAIN_S, workers)
        report = await check_torture(client, inputs, STEPS, ledger, kill_times=workers.kill_times)
        assert report.problems() == [], (
            rerun_hint(seed),
            report.figures(),
            workers.logs(),
        )
        # The kills landed on work in flight: the run tested recovery.
        assert interrupted >= KILLS, report.figures()
        assert workers.dead() == [], workers.logs()
        # The ledger saw every step run: the run tested something.
        assert len(ledger.executions()) == WORKFLOWS * STEPS
    finally:
        workers.stop_all()
        await client.close()
        ledger.close()
