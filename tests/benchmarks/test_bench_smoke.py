"""The core benchmark still runs: a quick pass prints its three figures (no timing checks)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_core.py"


@pytest.mark.realtime
@pytest.mark.timeout(120)
def test_quick_run_prints_the_three_figures() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=110,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert re.search(r"cores .*\n.*python .*SQLite \d", out), out
    for figure in (r"workflows/s [\d,.]+", r"p50 ms [\d,.]+, p99 ms [\d,.]+", r"ratio [\d.]+"):
        assert re.search(rf"median: .*{figure}.*\[target ", out), out
