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
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
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


def run_once(args: argparse.Namespace, url: str, pg_cpu: Callable[[], float]) -> str:
    bench = Path(__file__).with_name("bench_core.py")
    command = [sys.executable, str(bench), "--runs", "1", "--only", "a"]
    command += ["--postgres", url, "--workers", str(args.workers)]
    pg_before = pg_cpu()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(0.5)  # the server's backends exit after their sessions
    pg = pg_cpu() - pg_before
    ours = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    lines = [line.strip() for line in out.splitlines() if "run 1" in line]
    lines.append(f"wall {wall:.1f} s on {os.cpu_count()} cores")
    lines.append(
        f"CPU: benchmark and {args.workers} worker processes {ours:.1f} s, PostgreSQL {pg:.1f} s"
        f" ({pg / WORKFLOWS * 1000:.2f} ms per workflow)"
    )
    return "\n".join(lines)


WORKFLOWS = 2000 + 4  # scenario (a), and the warm-up workflows of 2 worker processes


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
        for i in range(args.runs):
            asyncio.run(sql("SELECT pg_stat_statements_reset()"))
            print(f"-- run {i + 1}")
            print(run_once(args, server.url, lambda: tree_cpu_seconds(postmaster)), flush=True)
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
            f"last run, per workflow: {calls / n:.2f} statements, "
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
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--width", type=int, default=110, help="of the statements shown")
    args = parser.parse_args()
    if args.private:
        private(args)
        return 0
    for i in range(args.runs):
        print(f"-- run {i + 1}")
        print(run_once(args, args.postgres, postgres_cpu_seconds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
