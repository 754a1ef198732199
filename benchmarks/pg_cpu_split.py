"""Where the CPU goes when perdure runs on PostgreSQL: the benchmark with its worker
processes, against the PostgreSQL server's processes on the same machine.

Run it (PostgreSQL local, as in ``bench_core.py``)::

    python benchmarks/pg_cpu_split.py
    python benchmarks/pg_cpu_split.py --postgres postgresql://postgres@127.0.0.1/test --workers 1

It runs ``bench_core.py --only a --runs 1`` (2,000 one-activity workflows) with that many
``perdure worker`` processes, and prints the CPU seconds used by that benchmark and its
worker processes (``getrusage`` of the children, their start-up included) and by every
``postgres`` process on this machine (from ``/proc``: user and system time, their exited
children's included), beside the wall time. Linux only; other work of the PostgreSQL server
during the run is counted too, so run it on a quiet server.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    bench = Path(__file__).with_name("bench_core.py")
    command = [sys.executable, str(bench), "--runs", "1", "--only", "a"]
    command += ["--postgres", args.postgres, "--workers", str(args.workers)]
    pg_before = postgres_cpu_seconds()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    pg = postgres_cpu_seconds() - pg_before
    ours = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    for line in out.splitlines():
        if "run 1" in line:
            print(line.strip())
    print(f"wall {wall:.1f} s on {os.cpu_count()} cores")
    print(f"CPU: benchmark and {args.workers} worker processes {ours:.1f} s, PostgreSQL {pg:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
