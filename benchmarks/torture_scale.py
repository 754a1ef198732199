"""The long tier's scenarios at scale (RELIABILITY.md sections 5, 9, 10), run by
``python -m benchmarks.torture --tier long`` after the crash torture (or alone with
``--scenario timers|signals|claimers``):

* timers: 2,000 durable timers due over 120 s in 200 workflows; every worker SIGKILLed
  together twice in the window, and on PostgreSQL the server crash-restarted once: each
  timer fires once, never early; lateness in and out of the faults;
* signals: 10,000 signals to 5 workflows from 50 concurrent senders (in 5 processes), 3
  worker SIGKILLs during the burst: each signal in history once, each sender's in order,
  the handler saw history's order;
* claimers: 100,000 tasks raced for by 8 worker processes (``harness.claimers``): lost 0,
  duplicated 0.

The harness does the work (``tests/reliability/harness/scale.py``, ``claimers.py``); the CI
tier runs the same at small sizes in ``tests/reliability``.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

SCENARIOS = ("timers", "signals", "claimers")
TIMERS = {"workflows": 200, "timers": 2000, "span_s": 120.0, "kill_rounds": 2, "restarts": 1}
SIGNALS = {"workflows": 5, "senders": 10, "per_sender": 200, "kills": 3, "processes": 5}
CLAIMERS = {"tasks": 100_000, "processes": 8, "batch": 100}


async def run(scenario: str, backend: str, seed: int, args: argparse.Namespace) -> tuple[bool, str]:
    """Run one scenario on one store; whether it passed, and its figures."""
    from harness.scale import signal_burst, timer_storm

    from benchmarks.torture import database

    rng = random.Random(seed)
    directory = Path(tempfile.mkdtemp(prefix=f"perdure-{scenario}-{backend}-"))
    began = time.monotonic()
    with database(backend, directory) as (url, server):
        if scenario == "timers":
            restart = (lambda: server.restart("immediate")) if server is not None else None
            report: Any = await timer_storm(
                url,
                directory,
                rng,
                workers=3,
                restart=restart,
                restarts=TIMERS["restarts"] if restart else 0,
                workflows=TIMERS["workflows"],
                timers=TIMERS["timers"],
                span_s=TIMERS["span_s"],
                kill_rounds=TIMERS["kill_rounds"],
                outage_s=(1.0, 3.0),
                deadline_s=300.0,
                # Temporal's default: with the torture app's 1 s, workflow tasks claimed in
                # a batch outlived their lease on a loaded machine (see docs/reliability.md).
                task_timeout=timedelta(seconds=10),
            )
        elif scenario == "signals":
            report = await signal_burst(url, directory, rng, deadline_s=900.0, **SIGNALS)
        else:
            from harness.claimers import race

            report = await race(url, directory, **CLAIMERS)
    figures = f"{scenario} on {backend} (seed {seed}, {time.monotonic() - began:.0f} s): "
    figures += report.figures()
    figures += "".join(f"\n  PROBLEM: {p}" for p in report.problems[:10])
    return not report.problems, figures
