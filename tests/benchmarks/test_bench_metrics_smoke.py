"""The metrics overhead benchmark still runs: a tiny pass prints its medians and ratio (no
timing checks: the figures are for docs/performance.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_metrics.py"


@pytest.mark.realtime
@pytest.mark.timeout(120)
def test_tiny_run_prints_medians_and_the_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--workflows", "30", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=110,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert re.search(r"metrics off [\d,]+ workflows/s, metrics on [\d,]+ workflows/s", out), out
    assert re.search(r"ratio on/off [\d.]+, overhead [-+][\d.]+% \[target: at most 5%", out), out
    assert re.search(r"CPU per workflow: off [\d,]+ µs, on [\d,]+ µs", out), out
