"""The README's demo, run as a user runs it: to completion, again (stored results), and
killed half way then resumed (completed steps are not run again)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from example_support import EXAMPLES, run_example

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]

DEMO = EXAMPLES / "order_saga.py"
# One line per activity execution: "[  0.5s] order-1001  reserve inventory  attempt 1  ok: .."
STEP_LINE = re.compile(r"\] (order-\d+)\s+(.+?)\s+attempt (\d+)  (ok|FAILED)")
SUMMARY = (
    re.compile(r"order-1001\s+COMPLETED\s+shipped"),
    re.compile(r"order-1002\s+FAILED\s+charge payment: card declined\s+refund payment, release"),
    re.compile(r"order-1003\s+FAILED\s+fulfil order: .*cancel fulfilment, refund payment, rel"),
)


def run_demo(db: Path) -> str:
    """Run the demo to completion and check its summary; its output."""
    out = run_example(DEMO, db, timeout=90)
    for line in SUMMARY:
        assert line.search(out), out
    return out


def steps(output: str) -> list[tuple[str, str, str]]:
    """(workflow id, step, outcome) of each activity execution the output narrates."""
    return [(m[1], m[2], m[4]) for m in STEP_LINE.finditer(output)]


def test_runs_to_completion_then_shows_stored_results(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    first = run_demo(db)
    assert ("order-1001", "fulfil order", "ok") in steps(first)
    assert ("order-1002", "undo: release inventory", "ok") in steps(first)
    assert ("order-1003", "undo: refund payment", "ok") in steps(first)

    second = run_demo(db)
    assert second.count("finished in an earlier run") == 3
    assert steps(second) == []  # nothing ran again


def test_killed_mid_run_resumes_without_repeating_completed_steps(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    log = tmp_path / "first.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(DEMO), "--db", str(db)], stdout=out)
    try:
        # Kill once some order has reached its second step: its first step's result is then
        # recorded for sure (the workflow scheduled the next step after reading it).
        deadline = time.monotonic() + 60
        while not any(step == "charge payment" for _, step, _ in steps(log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    first = steps(log.read_text())

    resumed = run_demo(db)
    assert "resuming order-" in resumed
    # A step that completed in the first run, and was followed by another step of the same
    # order, must not run again (the very last line of an order may not have been recorded).
    again = set(steps(resumed))
    for i, (order, step, outcome) in enumerate(first):
        followed = any(o == order for o, _, _ in first[i + 1 :])
        if outcome == "ok" and followed:
            assert (order, step, "ok") not in again, resumed
