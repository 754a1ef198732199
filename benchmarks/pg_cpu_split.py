"""Where the CPU goes when perdure runs on PostgreSQL: the benchmark with its worker
processes, against the PostgreSQL server's processes on the same machine.

Run it (PostgreSQL local, as in ``bench_core.py``)::

    python benchmarks/pg_cpu_split.py
    python benchmarks/pg_cpu_split.py --postgres postgresql://postgres@127.0.0.1/test --workers 1
    python benchmarks/pg_cpu_split.py --private --runs 3   # a server of its own, see below

It runs ``bench_core.py --only a --runs 1`` (2,000 one-activity workflows) with that many
``perdure worker`` processes, and prints the CPU seconds used by that benchmark and its
worker processes (``getrusage`` of the children, their start-up included) and by every
``postgres`` process on this machine (from ``/proc``: user and system time, their exited
children's included), beside the wall time. Linux only; other work of the PostgreSQL server
during the run is counted too, so run it on a quiet server.

With ``--private`` it starts a PostgreSQL server of its own (``tests/pgserver.py``: a
temporary cluster on a free port, default settings but autovacuum off like the shared one,
with ``pg_stat_statements`` loaded) and counts only that server's processes, so other work
on the machine's server does not land in the figure; it then also prints, per workflow, the
statements the server ran and the time it spent executing them (``pg_stat_statements``),
the most expensive first (``--top``).

With ``--compare DIR`` (a perdure source tree, e.g. ``git archive main | tar -x -C DIR``)
each run is one of this code and one of that tree's, alternately, and the medians of both
and their ratios are printed at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HZ = os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            if not comm.startswith("postgres"):
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += sum(int(x) for x in fields[11:15]) / HZ  # utime stime cutime cstime
    return total


def tree_cpu_seconds(root: int) -> float:
    """CPU of process ``root`` and its children, those that exited included."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(pid) == root or int(fields[1]) == root:  # fields[1]: the parent's pid
            total += sum(int(x) for x in fields[11:15]) / HZ
    return total


@dataclass
class Figures:
    """One run of scenario (a)."""

    rate: float  # workflows/s
    ours: float  # CPU s of the benchmark and its worker processes
    pg: float  # CPU s of PostgreSQL
    wall: float


def run_once(
    args: argparse.Namespace, url: str, pg_cpu: Callable[[], float], src: str | None = None
) -> Figures:
    """Scenario (a) once, with the perdure of this checkout or, with ``src``, of that
    directory (put first on PYTHONPATH, for the benchmark and its worker processes)."""
    bench = Path(__file__).with_name("bench_core.py")
    command = [sys.executable, str(bench), "--runs", "1", "--only", "a"]
    command += ["--postgres", url, "--workers", str(args.workers)]
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    pg_before = pg_cpu()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(0.5)  # the server's backends exit after their sessions
    pg = pg_cpu() - pg_before
    ours = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    rate = float(out.split("workflows/s", 1)[1].split(",", 1)[0].replace(",", ""))
    return Figures(rate, ours, pg, wall)


def show(label: str, f: Figures, workers: int) -> None:
    per = 1000 / WORKFLOWS
    print(
        f"{label}: {f.rate:,.0f} workflows/s; wall {f.wall:.1f} s on {os.cpu_count()} cores; "
        f"CPU: benchmark and {workers} worker processes {f.ours:.1f} s "
        f"({f.ours * per:.2f} ms per workflow), PostgreSQL {f.pg:.1f} s "
        f"({f.pg * per:.2f} ms per workflow)",
        flush=True,
    )


WORKFLOWS = 2000 + 4  # scenario (a), and the warm-up workflows of 2 worker processes


def runs(args: argparse.Namespace, url: str, pg_cpu: Callable[[], float], reset: Any) -> None:
    """``--runs`` runs, each of this code and (``--compare``) the other alternately, the
    first of a pair alternating too; then the medians and their ratios."""
    mine: list[Figures] = []
    theirs: list[Figures] = []
    for i in range(args.runs):
        order = [None, args.compare] if i % 2 == 0 else [args.compare, None]
        for src in order:
            if src is None:
                reset()
                mine.append(run_once(args, url, pg_cpu))
                show(f"run {i + 1}, this code", mine[-1], args.workers)
            elif args.compare:
                theirs.append(run_once(args, url, pg_cpu, f"{args.compare}/src"))
                show(f"run {i + 1}, {args.compare}", theirs[-1], args.workers)
    if not theirs:
        return
    print("medians (this code / compared, ratio):")
    per = 1000 / WORKFLOWS
    for name, get in [
        ("workflows/s", lambda f: f.rate),
        ("PostgreSQL CPU ms per workflow", lambda f: f.pg * per),
        ("benchmark + workers CPU ms per workflow", lambda f: f.ours * per),
    ]:
        a = statistics.median(get(f) for f in mine)
        b = statistics.median(get(f) for f in theirs)
        print(f"  {name}: {a:,.2f} / {b:,.2f} = {a / b:.2f}")


def private(args: argparse.Namespace) -> None:
    import asyncio

    import asyncpg  # type: ignore[import-untyped]

    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    from pgserver import private_server

    with private_server() as server:
        with open(server.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\nautovacuum = off\nshared_preload_libraries = 'pg_stat_statements'\n")
            conf.write("pg_stat_statements.track = 'all'\n")
        server.restart()
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])

        async def sql(query: str) -> list[Any]:
            conn = await asyncpg.connect(server.url)
            try:
                return list(await conn.fetch(query))
            finally:
                await conn.close()

        asyncio.run(sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        runs(
            args,
            server.url,
            lambda: tree_cpu_seconds(postmaster),
            lambda: asyncio.run(sql("SELECT pg_stat_statements_reset()")),
        )
        rows = asyncio.run(
            sql(
                "SELECT calls, total_exec_time, total_plan_time, rows, query "
                "FROM pg_stat_statements ORDER BY total_exec_time DESC"
            )
        )
    n = WORKFLOWS
    calls = sum(r[0] for r in rows)
    exec_ms = sum(r[1] for r in rows)
    print(
        f"the last run of this code, per workflow: {calls / n:.2f} statements, "
        f"{exec_ms / n:.3f} ms executing them (pg_stat_statements)"
    )
    for r in rows[: args.top]:
        query = " ".join(r[4].split())
        query = query if len(query) <= args.width else query[: args.width - 3] + "..."
        print(f"  {r[0] / n:6.2f} calls {r[1] / n:6.3f} ms  {query}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--private", action="store_true", help="on a server of its own")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--compare",
        metavar="DIR",
        help="a perdure source tree (e.g. from git archive) to run alternately with this one",
    )
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--width", type=int, default=110, help="of the statements shown")
    args = parser.parse_args()
    if args.private:
        private(args)
    else:
        runs(args, args.postgres, postgres_cpu_seconds, lambda: None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
