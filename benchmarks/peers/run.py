"""perdure beside Temporal and DBOS: the same six scenarios on each, one table with the ratios.

Run it from the repository root (the peers come with ``pip install -e '.[peers]'``)::

    python -m benchmarks.peers --scale quick --runs 1        # about four minutes
    python -m benchmarks.peers --scenarios S1,S2 --scale full --runs 3      # about 25 min
    python -m benchmarks.peers --scale medium --runs 3       # about 40 min
    python -m benchmarks.peers --systems perdure --scale quick   # no peer needed

Scenarios (``--scale full`` sizes; ``medium`` keeps S1 and S2 and runs S3 with 2,000 steps,
S4-S6 with 2,000 workflows; ``quick`` is much smaller). Full scale is long: Temporal's dev
server runs about 20 workflows/s on two cores, so its S6 (100,000 workflows) alone takes
hours.

- S1 throughput: 2,000 workflows of one activity each, started concurrently; workflows/s
  from the first start to the last result.
- S2 latency: one workflow of 3 sequential activities at a time, start to result (200 runs
  after 20 warm-up runs); p50, p95, p99.
- S3 long history: one workflow of 10,000 sequential activities, each returning the time it
  ran; the mean step cost over the first and the last 100 steps, and their ratio.
- S4 timers: 10,000 workflows that sleep 2 s durably, started at once; time until all finish.
- S5 recovery: 10,000 workflows (activity, 1 s durable sleep, activity) started by a worker
  process that is killed with SIGKILL half a second after its last start; time from the kill
  until a new worker process has finished them all.
- S6 memory: 100,000 workflows waiting on a signal (every one seen waiting), then signalled
  and finished; the peak RSS of the process running them.
- S7 across processes: one workflow of one activity at a time, started and awaited by a
  client in one process and run by a worker in another (the shape of a web app beside its
  worker; sizes of S2); p50, p95.

Systems (``--systems``, in this order by default):

- ``perdure``: a SQLite file, WAL, ``synchronous=FULL``; client and worker in one process.
- ``perdure-postgres``: the same on a fresh PostgreSQL schema.
- ``perdure-postgres-2w``: S1 only, two ``perdure worker`` processes on a fresh schema.
- ``temporal``: ``temporalio`` with a default Worker (sandboxed) and a ``temporal server
  start-dev`` started for each run on free ports, its SQLite file in WAL with
  ``synchronous=FULL``.
- ``dbos-sqlite``, ``dbos-postgres``: DBOS Transact, async workflows and steps, its system
  database on a SQLite file (WAL, ``synchronous=FULL``) or a fresh PostgreSQL schema.

Each (scenario, run, system) runs in a fresh process, one at a time, systems interleaved run
by run so that a slow minute of a shared machine does not fall on one system only. Each
figure is the median over ``--runs``; the ratios are perdure's median over the peer's.
PostgreSQL is ``$PERDURE_BENCH_POSTGRES`` (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/peers/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.peers.common import ROOT, SCALES, Scale

POSTGRES = os.environ.get("PERDURE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ALL_SYSTEMS = [
    "perdure",
    "perdure-postgres",
    "perdure-postgres-2w",
    "temporal",
    "dbos-sqlite",
    "dbos-postgres",
]
PEERS = ["temporal", "dbos-sqlite", "dbos-postgres"]
# Column headings: the systems' names, shortened.
SHORT = {
    "perdure": "perdure",
    "perdure-postgres": "perdure pg",
    "perdure-postgres-2w": "perdure pg 2w",
    "temporal": "temporal",
    "dbos-sqlite": "dbos sqlite",
    "dbos-postgres": "dbos pg",
}
ALL_SCENARIOS = ["S1", "S2", "S3", "S4", "S5", "S6", "S7"]
# Python packages each system needs, and whether it needs the PostgreSQL server.
NEEDS = {
    "perdure": ([], False),
    "perdure-postgres": (["asyncpg"], True),
    "perdure-postgres-2w": (["asyncpg"], True),
    "temporal": (["temporalio"], False),
    "dbos-sqlite": (["dbos"], False),
    "dbos-postgres": (["dbos", "asyncpg"], True),
}
ONLY = {"perdure-postgres-2w": {"S1"}}


@dataclass(frozen=True)
class Figure:
    scenario: str
    key: str
    label: str
    higher_is_better: bool
    ratio: bool = True


FIGURES = [
    Figure("S1", "wf/s", "S1 throughput, workflows/s", True),
    Figure("S2", "p50 ms", "S2 latency p50, ms", False),
    Figure("S2", "p95 ms", "S2 latency p95, ms", False),
    Figure("S2", "p99 ms", "S2 latency p99, ms", False),
    Figure("S3", "first ms", "S3 step cost, first steps, ms", False),
    Figure("S3", "last ms", "S3 step cost, last steps, ms", False),
    Figure("S3", "last/first", "S3 last/first", False, ratio=False),
    Figure("S4", "s to all done", "S4 timers, s until all done", False),
    Figure("S5", "s after kill", "S5 recovery, s from kill to all done", False),
    Figure("S6", "peak RSS MB", "S6 peak RSS of the worker, MB", False),
    Figure("S6", "server peak RSS MB", "S6 + server peak RSS, MB", False, ratio=False),
    Figure("S6", "s total", "S6 s to start, wait, signal, finish", False),
    Figure("S7", "p50 ms", "S7 client → worker process, p50 ms", False),
    Figure("S7", "p95 ms", "S7 client → worker process, p95 ms", False),
]


@dataclass
class Cell:
    runs: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    na: str | None = None
    error: str | None = None

    def median(self, key: str) -> float | None:
        values = [r[key] for r in self.runs if key in r]
        return statistics.median(values) if values else None


# ------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------


def unavailable(system: str) -> str | None:
    """Why ``system`` cannot run here, or None."""
    packages, postgres = NEEDS[system]
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        return f"not installed ({', '.join(missing)}): pip install -e '.[peers]'"
    if postgres:
        try:
            asyncio.run(_postgres_version())
        except Exception as exc:
            return f"PostgreSQL unreachable at {POSTGRES.split('@')[-1]} ({type(exc).__name__})"
    return None


async def _postgres_version() -> str:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(POSTGRES, timeout=5)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def run_child(system: str, scenario: str, scale: str, timeout: float) -> dict[str, object]:
    command = [sys.executable, "-m", "benchmarks.peers.child", system, scenario.lower()]
    try:
        proc = subprocess.run(
            [*command, "--scale", scale],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, object] = json.loads(line[len("RESULT ") :])
            return result
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return {"error": lines[-1][:200] if lines else f"exit code {proc.returncode}"}


def run_all(args: argparse.Namespace) -> dict[tuple[str, str], Cell]:
    cells = {(system, s): Cell() for system in args.systems for s in args.scenarios}
    missing = {system: unavailable(system) for system in args.systems}
    timeout = args.timeout or SCALES[args.scale].child_timeout_s
    for scenario in args.scenarios:
        for run in range(args.runs):
            for system in args.systems:
                cell = cells[system, scenario]
                reason = missing[system]
                if reason is None and scenario not in ONLY.get(system, {scenario}):
                    reason = f"{', '.join(sorted(ONLY[system]))} only"
                if reason is not None:
                    cell.na = reason
                    continue
                if cell.na or cell.error:
                    continue
                t0 = time.perf_counter()
                result = run_child(system, scenario, args.scale, timeout)
                took = time.perf_counter() - t0
                if "na" in result:
                    cell.na = str(result["na"])
                elif "error" in result:
                    cell.error = str(result["error"])
                else:
                    figures = result["figures"]
                    assert isinstance(figures, dict)
                    cell.runs.append(figures)
                    for note in result.get("notes", []):  # type: ignore[attr-defined]
                        if note not in cell.notes:
                            cell.notes.append(note)
                shown = (
                    cell.na
                    or cell.error
                    or ", ".join(f"{k} {fmt(v)}" for k, v in cell.runs[-1].items())
                )
                print(
                    f"{scenario} run {run + 1}/{args.runs} {system}: {shown} ({took:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    return cells


# ------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------


def fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    with open("/proc/meminfo") as f:
        memory_gb = int(f.readline().split()[1]) / 1024 / 1024
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_gb:.0f} GB, "
        f"{platform.system()} {platform.release()}; one small SQLite commit "
        f"(WAL, synchronous=FULL) takes {commit_cost_ms():.2f} ms here (median)"
    )


def commit_cost_ms(samples: int = 100) -> float:
    with tempfile.TemporaryDirectory(prefix="perdure-peers-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "fsync.db", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE t (x INTEGER)")
            times = []
            for i in range(samples):
                t0 = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t VALUES (?)", (i,))
                conn.execute("COMMIT")
                times.append(time.perf_counter() - t0)
        finally:
            conn.close()
    return statistics.median(times) * 1000


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(systems: list[str]) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    parts = [
        f"Python {platform.python_version()}",
        f"SQLite {sqlite3.sqlite_version}",
        f"perdure {version('perdure')} (commit {commit or '?'}"
        + (", with uncommitted changes in src/)" if dirty else ")"),
    ]
    if "temporal" in systems and version("temporalio"):
        parts.append(f"temporalio {version('temporalio')}")
        server = subprocess.run(
            [str(Path(sys.executable).parent / "temporal"), "--version"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        parts.append(server.replace("temporal version", "temporal CLI") or "temporal CLI ?")
    if any(s.startswith("dbos") for s in systems) and version("dbos"):
        parts.append(f"dbos {version('dbos')} (SQLAlchemy {version('sqlalchemy')})")
    if any("postgres" in s for s in systems) and version("asyncpg"):
        with contextlib.suppress(Exception):
            parts.append(f"PostgreSQL {asyncio.run(_postgres_version())}")
    return ", ".join(parts)


def settings(scale: Scale, args: argparse.Namespace) -> list[str]:
    return [
        f"scale {args.scale}: S1 {scale.s1_workflows:,} workflows; S2 {scale.s2_runs} runs "
        f"after {scale.s2_warmup} warm-up; S3 {scale.s3_steps:,} steps, windows of "
        f"{scale.s3_window}; S4 {scale.s4_workflows:,} workflows sleeping 2 s; S5 "
        f"{scale.s5_workflows:,} workflows, SIGKILL 0.5 s after the last start; S6 "
        f"{scale.s6_workflows:,} workflows; S7 {scale.s2_runs} runs after {scale.s2_warmup} "
        "warm-up, the client in one process and the worker in another",
        f"runs per figure: {args.runs} (median); each run a fresh process and a fresh database "
        "(SQLite file, PostgreSQL schema, Temporal dev server), dropped after",
        "perdure: Client + Worker (default limits, determinism guard on) in one process; "
        "SQLite WAL, synchronous=FULL (its default)",
        "temporal: temporalio Worker with defaults (sandboxed workflows; client in the same "
        "process), temporal server start-dev --headless, SQLite file with journal_mode=wal, "
        "synchronous=FULL",
        "dbos: async @DBOS.workflow / @DBOS.step in one process, defaults; SQLite file switched "
        "to WAL beforehand (synchronous=FULL, SQLite's default)",
        "every activity: start-to-close 10 s; workflow task timeout 10 s (perdure, Temporal)",
    ]


def render(cells: dict[tuple[str, str], Cell], args: argparse.Namespace) -> str:
    systems = args.systems
    reference = "perdure" if "perdure" in systems else None
    ratio_columns: list[tuple[str, str]] = []
    if reference:
        ratio_columns += [(reference, p) for p in PEERS if p in systems]
    if "perdure-postgres" in systems and "dbos-postgres" in systems:
        ratio_columns.append(("perdure-postgres", "dbos-postgres"))
    footnotes: list[str] = []

    def note(text: str) -> str:
        if text not in footnotes:
            footnotes.append(text)
        return f"[{footnotes.index(text) + 1}]"

    header = [
        "figure",
        *(SHORT[s] for s in systems),
        *(f"{'pg ' if a == 'perdure-postgres' else ''}÷ {SHORT[b]}" for a, b in ratio_columns),
    ]
    rows = []
    for figure in FIGURES:
        if figure.scenario not in args.scenarios:
            continue
        present = [cells[s, figure.scenario].median(figure.key) for s in systems]
        if all(v is None for v in present) and any(cells[s, figure.scenario].runs for s in systems):
            continue  # a figure only some systems have, and none of these here
        arrow = "↑" if figure.higher_is_better else "↓"
        row = [f"{figure.label} {arrow}"]
        for system, value in zip(systems, present, strict=True):
            cell = cells[system, figure.scenario]
            if cell.na:
                row.append("n/a " + note(f"{system}: {cell.na}"))
            elif cell.error:
                row.append("error " + note(f"{system}, {figure.scenario}: {cell.error}"))
            elif value is None:
                row.append("-")
            else:
                marks = "".join(note(n) for n in cell.notes)
                row.append(fmt(value) + (f" {marks}" if marks else ""))
        for a, b in ratio_columns:
            va = cells[a, figure.scenario].median(figure.key)
            vb = cells[b, figure.scenario].median(figure.key)
            ok = figure.ratio and va is not None and vb
            row.append(f"{va / vb:.2f}" if ok else "")  # type: ignore[operator]
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in rows:
        cells_text = [row[0].ljust(widths[0])]
        cells_text += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("| " + " | ".join(cells_text) + " |")
    out = "\n".join(lines)
    out += (
        "\n\n↑ higher is better, ↓ lower is better. ÷ X: perdure's median over X's (pg ÷ X: "
        "perdure pg's); above 1 on a ↑ row or below 1 on a ↓ row, perdure is ahead"
    )
    if footnotes:
        out += "\n\n" + "\n".join(f"[{i + 1}] {text}" for i, text in enumerate(footnotes))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description="perdure, Temporal and DBOS on the same scenarios, one table with ratios",
    )
    parser.add_argument(
        "--systems",
        default=",".join(ALL_SYSTEMS),
        help=f"comma list, in column order (default: {','.join(ALL_SYSTEMS)})",
    )
    parser.add_argument("--scenarios", default=",".join(ALL_SCENARIOS), help="e.g. S1,S2")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds one run may take (default: by scale)"
    )
    parser.add_argument("--json", metavar="PATH", help="also write every run's figures here")
    args = parser.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.scenarios = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in ALL_SYSTEMS]
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {ALL_SYSTEMS}")
    unknown = [s for s in args.scenarios if s not in ALL_SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {ALL_SCENARIOS}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    header = [  # before the runs: the commit under test, the disk before any load
        f"perdure peers benchmark, {datetime.date.today().isoformat()}",
        f"machine: {machine()}",
        f"versions: {versions(args.systems)}",
    ]
    cells = run_all(args)
    print("\n".join(header))
    for line in settings(SCALES[args.scale], args):
        print(f"settings: {line}")
    print()
    print(render(cells, args))
    print(f"\ntotal time: {time.perf_counter() - started:.0f} s")
    if args.json:
        raw = {
            f"{system} {scenario}": {
                "runs": c.runs,
                "notes": c.notes,
                "na": c.na,
                "error": c.error,
            }
            for (system, scenario), c in cells.items()
        }
        Path(args.json).write_text(json.dumps(raw, indent=1))
    return 1 if any(c.error for c in cells.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
