"""The core benchmark still runs: a quick pass prints its four figures (no timing checks),
and on PostgreSQL it runs the throughput scenario with worker processes and leaves no schema
behind."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pgutil import POSTGRES_URL, postgres_admin

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_core.py"


@pytest.mark.realtime
@pytest.mark.timeout(120)
def test_quick_run_prints_the_four_figures() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=110,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert re.search(r"cores .*\n.*python .*SQLite \d", out), out
    for figure in (
        r"workflows/s [\d,.]+",
        r"p50 ms [\d,.]+, p99 ms [\d,.]+",
        r"ratio [\d.]+",
        r"p50 ms [\d,.]+, p95 ms [\d,.]+, polling p50 ms [\d,.]+, polling p95 ms [\d,.]+",
    ):
        assert re.search(rf"median: .*{figure}.*\[target ", out), out


@pytest.mark.realtime
@pytest.mark.timeout(120)
async def test_postgres_worker_processes_column() -> None:
    admin = await postgres_admin()
    await admin.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BENCH),
        *("--quick", "--runs", "1", "--only", "a", "--postgres", POSTGRES_URL),
        *("--workers", "0,1"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    stdout, _ = await asyncio.wait_for(proc.communicate(), 110)
    out = stdout.decode()
    assert proc.returncode == 0, out
    assert re.search(
        r"worker in process +1 worker process\n\(a\) workflows/s +[\d,.]+ +[\d,.]+", out
    ), out


@pytest.mark.realtime
def test_time_skipping_benchmark_prints_its_median() -> None:
    bench = BENCH.parent / "bench_time_skipping.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--runs", "1"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"90 days, 4 reminders, time-skipping: median [\d.]+ ms", result.stdout)


@pytest.mark.realtime
@pytest.mark.timeout(120)
def test_retention_benchmark_deletes_every_closed_run_and_prints_the_ratio() -> None:
    bench = BENCH.parent / "bench_retention.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--quick", "--closed", "600", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=110,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert re.search(r"while retention deletes those runs +\d+ workflows/s +ratio [\d.]+", out)
    assert re.search(r"run: deleted 600 \(\d+ during S1\); write lock per batch: median", out), out


@pytest.mark.timeout(120)
def test_cyclic_garbage_finds_nothing_left_by_one_activity_workflows() -> None:
    script = BENCH.parent / "cyclic_garbage.py"
    result = subprocess.run(
        [sys.executable, str(script), "50"], capture_output=True, text=True, timeout=110
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "50 workflows, max_cached_workflows=1000: 50 instances built" in out, out
    # Closed runs' instances are taken apart by their worker, and none was evicted: nothing.
    assert "0.0 objects a workflow left to the garbage collector" in out, out
    assert "WorkflowInstance" not in out and "_Attempt" not in out and "_Ticket" not in out, out


@pytest.mark.realtime
@pytest.mark.timeout(120)
def test_recovery_benchmark_resumes_a_killed_database_and_prints_its_median() -> None:
    script = BENCH.parent / "bench_recovery.py"
    result = subprocess.run(
        [sys.executable, str(script), "--workflows", "100", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=110,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert re.search(r"run 1 this: 100 recovered in [\d.]+ s, [\d.]+ s of CPU", out), out
    assert re.search(r"this: median [\d.]+ s", out), out


@pytest.mark.realtime
@pytest.mark.timeout(120)
def test_cpu_benchmark_alternates_two_trees_and_prints_their_medians() -> None:
    script = BENCH.parent / "bench_cpu.py"
    src = str(BENCH.parent.parent / "src")
    sizes = ["--workflows", "50", "--repeats", "1", "--latency-runs", "5", "--runs", "1"]
    result = subprocess.run(
        [sys.executable, str(script), *sizes, "--compare", src],
        capture_output=True,
        text=True,
        timeout=110,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for name in ("this", "compare"):
        run = rf"run 1 {name}: S1 [\d,]+ workflows/s, [\d.]+ ms CPU a workflow \(\d+% in full"
        assert re.search(run, out), out
        assert re.search(rf"{name}: median S1 [\d,]+ workflows/s, [\d.]+ ms CPU", out), out
    assert re.search(r"this / compare: S1 CPU a workflow [\d.]+, S2 p50 [\d.]+", out), out
