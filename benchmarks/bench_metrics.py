"""What Prometheus metrics cost: S1 (workflows of one activity each, all started at once) with
metrics off and on, interleaved, on the same machine in the same process.

Run it::

    python benchmarks/bench_metrics.py                 # 2,000 workflows, 5 runs of each
    python benchmarks/bench_metrics.py --workflows 200 --runs 1    # a smoke run
    python benchmarks/bench_metrics.py --postgres postgresql://postgres@127.0.0.1/test
    python benchmarks/bench_metrics.py --profile       # the metrics code's share of CPU

Each run is a fresh database (a temporary SQLite file, or a new PostgreSQL schema dropped
afterwards) with a client and a worker on one event loop, as in ``bench_core.py`` (a). "on"
gives the worker a ``PrometheusMetrics`` on a registry of its own (the store gauges read at
its start and every 10 s, as a worker does), and the registry is scraped once at the end, so
what the metrics recorded is checked, not assumed. The runs alternate off, on, off, on ...
so drift of the machine (other load, the disk) falls on both alike, after a warm-up run. It
prints each run, the medians, and the overhead: 1 - on/off (target: at most 5%); and the same
for this process's CPU time per workflow, which other load on a shared machine disturbs less
than throughput. ``--profile`` runs one metered S1 under cProfile instead and prints the share
of the time spent in the metrics code (the sink and the worker's hooks into it), which other
load does not move at all.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import TASK_QUEUE, OneActivity, machine_info, noop

from perdure import Client, Worker
from perdure.contrib.prometheus import PrometheusMetrics

TARGET = 0.05  # at most 5% fewer workflows/s with metrics on


async def s1(n: int, metered: bool, postgres: str | None) -> tuple[float, float]:
    """Workflows/s of one S1 run, and this process's CPU time per workflow (µs); with
    ``metered``, checks the scrape counted them all."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry) if metered else None
    with tempfile.TemporaryDirectory(prefix="perdure-bench-") as tmp:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        if postgres is None:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        else:
            url = f"{postgres}{'&' if '?' in postgres else '?'}schema={schema}"
        client = await Client.connect(url)
        try:
            async with Worker(
                client,
                task_queue=TASK_QUEUE,
                workflows=[OneActivity],
                activities=[noop],
                metrics=metrics,
            ):
                t0, cpu0 = time.perf_counter(), time.process_time()
                handles = await asyncio.gather(
                    *(
                        client.start_workflow(
                            OneActivity.run, i, id=f"a-{i}", task_queue=TASK_QUEUE
                        )
                        for i in range(n)
                    )
                )
                results = await asyncio.gather(*(h.result() for h in handles))
                elapsed = time.perf_counter() - t0
                cpu = time.process_time() - cpu0
        finally:
            await client.close()
            if postgres is not None:
                await _drop_schema(postgres, schema)
    if results != list(range(n)):
        raise RuntimeError("S1: wrong results")
    if metered:
        text = generate_latest(registry).decode()
        line = next(
            (x for x in text.splitlines() if x.startswith("perdure_workflow_completed_total{")),
            "",
        )
        if not line.endswith(f" {float(n)}"):
            raise RuntimeError(f"metrics on: expected {n} completed workflows, scraped {line!r}")
    return n / elapsed, cpu / n * 1e6


async def _drop_schema(postgres: str, schema: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(postgres.split("?", 1)[0])
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def profile(n: int, postgres: str | None) -> None:
    import cProfile
    import pstats

    await s1(min(n, 200), True, postgres)
    profiler = cProfile.Profile()
    profiler.enable()
    await s1(n, True, postgres)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    ours = {k: v for k, v in stats.items() if k[0].endswith(METRICS_CODE)}
    spent = sum(v[2] for v in ours.values())
    print(f"S1 with metrics on, {n:,} workflows under cProfile: {total:.2f} s in all")
    print(f"metrics code: {spent * 1000:.1f} ms, {spent / total:.2%} of the time")
    for (_, _, name), v in sorted(ours.items(), key=lambda kv: -kv[1][2])[:6]:
        print(f"  {name:24s} {v[1]:7,d} calls {v[2] * 1000:7.1f} ms")


METRICS_CODE = ("contrib/prometheus.py", "worker/_metrics.py")


async def main(args: argparse.Namespace) -> int:
    print(machine_info())
    if args.profile:
        await profile(args.workflows, args.postgres)
        return 0
    store = "PostgreSQL" if args.postgres else "SQLite"
    print(f"S1 on {store}: {args.workflows:,} workflows of one activity, {args.runs} runs each")
    await s1(min(args.workflows, 200), True, args.postgres)  # warm up: imports, caches
    rates: dict[bool, list[float]] = {False: [], True: []}
    cpus: dict[bool, list[float]] = {False: [], True: []}
    for i in range(args.runs):
        for metered in (False, True) if i % 2 == 0 else (True, False):
            gc.collect()
            rate, cpu = await s1(args.workflows, metered, args.postgres)
            rates[metered].append(rate)
            cpus[metered].append(cpu)
            print(
                f"  run {i + 1} metrics {'on ' if metered else 'off'}: {rate:,.0f} workflows/s, "
                f"{cpu:,.0f} µs CPU per workflow"
            )
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    cpu_off, cpu_on = statistics.median(cpus[False]), statistics.median(cpus[True])
    overhead = 1 - on / off
    print(f"median: metrics off {off:,.0f} workflows/s, metrics on {on:,.0f} workflows/s")
    verdict = "met" if overhead <= TARGET else "missed"
    print(
        f"ratio on/off {on / off:.3f}, overhead {overhead:+.1%} "
        f"[target: at most {TARGET:.0%}: {verdict}]"
    )
    # CPU time is steadier than throughput on a shared machine: the same cost, measured so.
    print(
        f"median CPU per workflow: off {cpu_off:,.0f} µs, on {cpu_on:,.0f} µs, "
        f"overhead {cpu_on / cpu_off - 1:+.1%}"
    )
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=2000, help="workflows per run")
    parser.add_argument("--runs", type=int, default=5, help="runs with metrics off, and on")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--profile", action="store_true", help="the metrics code's share")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
