"""Timers and signals at scale, CI tier (RELIABILITY.md sections 9 and 10; the long tier's
2,000 timers and 10,000 signals are ``python -m benchmarks.torture --tier long``).

* 120 timers due over 4 s in 12 workflows; every worker SIGKILLed together twice during the
  window: each timer fires exactly once and never before its time.
* 3 workflows each signalled by 2 senders (in 2 processes; 25 signals each, 150 in all)
  while a worker is SIGKILLed twice during the burst: each signal in history once, each
  sender's in the order it sent them, and the workflow's handler saw history's order.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from harness import rerun_hint
from harness.scale import signal_burst, timer_storm

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(180)]


async def test_timer_storm_under_kills(db_url: str, tmp_path: Path, seed: int) -> None:
    report = await timer_storm(
        db_url, tmp_path, random.Random(seed), workflows=12, timers=120, span_s=4.0
    )
    assert report.problems == [], (rerun_hint(seed), report.figures(), report.problems[:10])
    assert report.fired == report.timers == 120
    assert report.kills == 2  # two rounds of killing both workers: it tested recovery


async def test_signal_burst_under_kills(db_url: str, tmp_path: Path, seed: int) -> None:
    report = await signal_burst(
        db_url, tmp_path, random.Random(seed), workflows=3, senders=2, per_sender=25, kills=2
    )
    assert report.problems == [], (rerun_hint(seed), report.figures(), report.problems[:10])
    assert report.in_history == report.signals == 150
    assert report.kills == 2  # both landed while signals were being sent
