"""The listing benchmark still runs: at tiny sizes it fills a SQLite file from real runs,
times every case through the HTTP app and the client, and prints a figure for each (no
timing checks); a second run reuses the filled file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_list.py"


@pytest.mark.realtime
@pytest.mark.timeout(60)
def test_tiny_run_prints_a_figure_per_case_and_reuses_its_file(tmp_path: Path) -> None:
    command = [sys.executable, str(BENCH), "--store", "sqlite", "--runs", "1"]
    command += ["--closed", "300", "--open", "20", "--history", "40"]
    command += ["--page-size", "10", "--cache-dir", str(tmp_path)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=50)
    out = first.stdout
    assert first.returncode == 0, out + first.stderr
    assert "filling" in out, out
    assert re.search(r"first page, no query +[\d.]+ +[\d.]+ +10 rows, more", out), out
    assert re.search(r"count, no query +[\d.]+ +[\d.]+ +count 326\b", out), out  # + 6 templates
    assert re.search(r"history \(\d+ events\), first page of 100 +[\d.]+ +[\d.]+ +\d+ rows", out)
    assert re.search(r"slowest: [\d.]+ ms \(target 300 ms\)", out), out
    again = subprocess.run(command, capture_output=True, text=True, timeout=50)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reusing" in again.stdout and "filling" not in again.stdout, again.stdout
