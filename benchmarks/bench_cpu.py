"""CPU per workflow in one process (issue 19's S1 and S2, as the peers benchmark runs them),
by this code and (``--compare DIR``) another's, runs alternated, each in a fresh process.

Run it::

    python benchmarks/bench_cpu.py --runs 5
    python benchmarks/bench_cpu.py --compare /tmp/before/src   # git archive of another tree

Each run starts a process that runs S1 (``--workflows`` one-activity workflows started at
once, then their results awaited; SQLite FULL, the defaults) ``--repeats`` times, each on a
fresh database, then S2 (``--latency-runs`` 3-activity workflows one at a time, after 20
warm-up runs). It prints, per run: S1's workflows/s and CPU milliseconds per workflow (the
process's user and system time over the burst, so the machine's other load counts only
through what it steals), the share of that CPU spent in full garbage collections (a
``gc.callbacks`` timer), and S2's p50 and CPU per workflow. On a shared machine even CPU
per workflow drifts by a quarter from one hour to the next (the same code measured 0.65 and
0.85 ms): compare versions only within one invocation, where their runs alternate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The measuring process: prints one JSON line of its figures.
_CHILD = r"""
import asyncio, gc, json, statistics, sys, time
from benchmarks.peers import perdure_peer as peer

n, repeats, latency_runs = (int(a) for a in sys.argv[1:4])
full = [0.0, 0.0]  # seconds in full collections, start of the current one


def timed(phase, info):
    if info["generation"] == 2:
        if phase == "start":
            full[1] = time.process_time()
        else:
            full[0] += time.process_time() - full[1]


gc.callbacks.append(timed)


async def s1():
    rates, cpus, shares = [], [], []
    for _ in range(repeats):
        async with peer.engine("sqlite") as client:
            full[0] = 0.0
            c0 = time.process_time()
            rates.append(await peer._throughput(client, n))
            cpu = time.process_time() - c0
            cpus.append(cpu / n * 1e3)
            shares.append(full[0] / cpu)
    return statistics.median(rates), statistics.median(cpus), statistics.median(shares)


async def s2():
    samples = []
    async with peer.engine("sqlite") as client:
        for i in range(20 + latency_runs):
            if i == 20:
                c0 = time.process_time()
            t0 = time.perf_counter()
            await client.execute_workflow(
                peer.ThreeActivities.run, i, id=f"s2-{i}", task_queue=peer.TASK_QUEUE
            )
            if i >= 20:
                samples.append(time.perf_counter() - t0)
        cpu = time.process_time() - c0
    return statistics.median(samples) * 1e3, cpu / latency_runs * 1e3


async def main():
    rate, cpu, share = await s1()
    p50, s2_cpu = await s2()
    print(json.dumps({"rate": rate, "cpu": cpu, "gc": share, "p50": p50, "s2_cpu": s2_cpu}))


asyncio.run(main())
"""


def run(pythonpath: str, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([pythonpath, str(ROOT)])}
    sizes = [str(args.workflows), str(args.repeats), str(args.latency_runs)]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *sizes],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the measuring process failed:\n{out.stdout}{out.stderr}")
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workflows", type=int, default=2_000, help="S1's burst")
    parser.add_argument("--repeats", type=int, default=3, help="S1 bursts per process")
    parser.add_argument("--latency-runs", type=int, default=200, help="S2's measured runs")
    parser.add_argument("--runs", type=int, default=3, help="processes per version")
    parser.add_argument("--compare", metavar="DIR", help="another tree's src, run alternately")
    args = parser.parse_args()
    versions = {"this": str(ROOT / "src")}
    if args.compare:
        versions["compare"] = args.compare
    results: dict[str, list[dict[str, float]]] = {v: [] for v in versions}
    for i in range(args.runs):
        for name, path in versions.items():
            f = run(path, args)
            results[name].append(f)
            print(
                f"run {i + 1} {name}: S1 {f['rate']:,.0f} workflows/s, "
                f"{f['cpu']:.3f} ms CPU a workflow ({f['gc']:.0%} in full collections); "
                f"S2 p50 {f['p50']:.2f} ms, {f['s2_cpu']:.2f} ms CPU a workflow",
                flush=True,
            )
    medians = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for name, runs in results.items()
    }
    for name, m in medians.items():
        print(
            f"{name}: median S1 {m['rate']:,.0f} workflows/s, {m['cpu']:.3f} ms CPU a "
            f"workflow; S2 p50 {m['p50']:.2f} ms, {m['s2_cpu']:.2f} ms CPU a workflow"
        )
    if "compare" in medians:
        this, other = medians["this"], medians["compare"]
        print(
            f"this / compare: S1 CPU a workflow {this['cpu'] / other['cpu']:.3f}, "
            f"S2 p50 {this['p50'] / other['p50']:.3f}"
        )


if __name__ == "__main__":
    main()
