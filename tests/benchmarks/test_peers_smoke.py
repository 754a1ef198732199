"""The peers benchmark still runs: perdure's column on its own (no peer needed, so CI runs
it), and with the ``peers`` extra installed, a peer beside it with the ratio column."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_peers(*args: str, timeout: float) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.peers", "--scale", "quick", "--runs", "1", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.realtime
@pytest.mark.timeout(180)
def test_perdure_column_prints_every_scenario() -> None:
    out = run_peers("--systems", "perdure", timeout=170)
    assert re.search(r"machine: \d+ cores \(.+\)", out), out
    assert re.search(r"versions: Python [\d.]+, SQLite [\d.]+, perdure ", out), out
    assert "settings: scale quick: S1 200 workflows" in out, out
    assert re.search(r"\| figure +\| perdure +\|\n", out), out
    for label in (
        r"S1 throughput, workflows/s ↑",
        r"S2 latency p50, ms ↓",
        r"S2 latency p99, ms ↓",
        r"S3 last/first ↓",
        r"S4 timers, s until all done ↓",
        r"S5 recovery, s from kill to all done ↓",
        r"S6 peak RSS of the worker, MB ↓",
        r"S7 client → worker process, p50 ms ↓",
    ):
        assert re.search(rf"\| {label} +\| +[\d,.]+( \[\d+\])? \|", out), (label, out)


@pytest.mark.realtime
@pytest.mark.timeout(180)
def test_peer_columns_with_ratios() -> None:
    peers = {
        system: heading
        for system, heading, package in (
            ("temporal", "temporal", "temporalio"),
            ("dbos-sqlite", "dbos sqlite", "dbos"),
        )
        if importlib.util.find_spec(package) is not None
    }
    if not peers:
        pytest.skip("the peers are not installed: pip install -e '.[peers]'")
    out = run_peers("--systems", ",".join(["perdure", *peers]), "--scenarios", "S1", timeout=170)
    headings = [*peers.values(), *(f"÷ {h}" for h in peers.values())]
    columns = r" +\| +".join(["perdure", *headings])
    assert re.search(rf"\| figure +\| {columns} +\|", out), out
    ratios = r" \| +".join([r"[\d,.]+"] * (1 + 2 * len(peers)))
    assert re.search(rf"\| S1 throughput, workflows/s ↑ +\| +{ratios} \|", out), out
