"""Recovery alone (issue 19's S5 without the lease's wait): one killed database, resumed again
and again, by this code and (``--compare DIR``) another's, runs alternated.

Run it::

    nice -n 10 python benchmarks/bench_recovery.py --workflows 10000 --runs 3
    python benchmarks/bench_recovery.py --compare /tmp/before/src   # git archive of another

A worker process (the peers' S5 worker: one activity, a 1 s sleep, another activity) starts
``--workflows`` workflows on a fresh SQLite file and is SIGKILLed 0.5 s after the last start
is acknowledged, as in S5. The file is then copied once per run, after its leases have run
out, and a new worker process resumes the copy until every result is in. Each run prints
its wall seconds from the resume's start to the last result and the process's CPU seconds:
what recovery costs when nothing waits for a lease, so that wall seconds well above CPU
seconds mean the worker sat idle with work left.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = [sys.executable, "-m", "benchmarks.peers.child", "perdure", "s5-worker"]
LEASE_S = 10.0  # the workflow task's and activity's, as S5 sets them
# Prints the resume's CPU seconds once its results are all in (the child's own line says
# when); run in the resuming process before the child's code.
_CPU_AT_EXIT = "import atexit,time;atexit.register(lambda:print('cpu',time.process_time()))"


def killed_database(directory: Path, n: int) -> Path:
    """A SQLite file whose worker was SIGKILLed in the middle of ``n`` workflows."""
    db = directory / "killed" / "bench.db"
    db.parent.mkdir()
    url = f"sqlite:///{directory / 'bench.db'}"
    proc = subprocess.Popen(
        [*CHILD, "--phase", "start", "--target", url, "--n", str(n)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("started"):
        proc.kill()
        raise RuntimeError(f"the S5 worker did not start its workflows: {line!r}")
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for f in directory.glob("bench.db*"):
        if f.is_file():
            shutil.copy(f, db.parent / f.name)
    return db


def resume(killed: Path, work: Path, n: int, pythonpath: str) -> tuple[float, float]:
    """Resume a copy of ``killed``: (wall s, CPU s) until every result is in."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    for f in killed.parent.glob("bench.db*"):
        shutil.copy(f, work / f.name)
    env = {**os.environ, "PYTHONPATH": pythonpath}
    code = f"{_CPU_AT_EXIT};import runpy,sys;sys.argv[0]='child';runpy.run_module("
    code += "'benchmarks.peers.child',run_name='__main__')"
    t0 = time.perf_counter()
    phase = ["--phase", "resume", "--target", f"sqlite:///{work / 'bench.db'}", "--n", str(n)]
    out = subprocess.run(
        [sys.executable, "-c", code, *CHILD[3:], *phase],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = out.stdout.split()
    if out.returncode != 0 or "done" not in lines or "cpu" not in lines:
        raise RuntimeError(f"the resume failed: {out.stdout}{out.stderr}")
    done_at = float(lines[lines.index("done") + 1])
    cpu = float(lines[lines.index("cpu") + 1])
    return done_at - t0, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", metavar="DIR", help="another tree's src, run alternately")
    args = parser.parse_args()
    versions = {"this": str(ROOT / "src")}
    if args.compare:
        versions["compare"] = args.compare
    with tempfile.TemporaryDirectory(prefix="perdure-recovery-") as tmp:
        killed = killed_database(Path(tmp), args.workflows)
        time.sleep(LEASE_S)  # every lease held at the kill has run out
        walls: dict[str, list[float]] = {v: [] for v in versions}
        for i in range(args.runs):
            for name, path in versions.items():
                wall, cpu = resume(killed, Path(tmp) / "run", args.workflows, path)
                walls[name].append(wall)
                print(
                    f"run {i + 1} {name}: {args.workflows} recovered in {wall:.2f} s, "
                    f"{cpu:.2f} s of CPU",
                    flush=True,
                )
        for name, runs in walls.items():
            print(f"{name}: median {statistics.median(runs):.2f} s")


if __name__ == "__main__":
    main()
