"""The interceptor benchmark still runs: a tiny pass prints a figure per case (no timing
checks)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_interceptors.py"


def test_a_tiny_run_prints_each_case() -> None:
    command = [sys.executable, str(BENCH), "--activities", "20", "--runs", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stdout + done.stderr
    for case in ("no interceptor", "pass-through", "TracingInterceptor"):
        assert re.search(rf"{case} +[\d.]+ ms +[\d.]+ µs per activity", done.stdout), done.stdout
