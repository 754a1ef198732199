"""The reliability suite's long tier (RELIABILITY.md sections 1-4): crash torture with store
faults, on SQLite and PostgreSQL, and the figures a release is held to.

Usage::

    python -m benchmarks.torture --tier long                 # both stores, the full figures
    python -m benchmarks.torture --tier long --backend sqlite --seed 7
    python -m benchmarks.torture --tier ci                   # a quick run of the same
    python -m benchmarks.torture --tier long --scenario timers   # or signals, claimers
    python -m benchmarks.torture --tier suite-faults --seed 7   # the whole suite, 1% faults
    python -m benchmarks.torture --tier soak --minutes 20    # steady load, periodic faults

A run: ``--workflows`` workflows of ``--steps`` sequential activities (each appends to a
ledger outside the store, sleeps 5-50 ms, appends again, returns a pure function of its
input) on ``--workers`` worker processes; each worker fails ``--fault-rate`` of its store calls
(before the call, after it committed, or as a busy database). The faults are spread over the
run by its progress (the i-th of n when 5 + 90 i/n % of the activities are done): ``--kills``
SIGKILLs of a random worker (one with an activity in flight, when there is one), started
again at once; on PostgreSQL, a throwaway cluster of the run's own (never the shared server)
is crash-restarted (``pg_ctl restart -m immediate``) ``--restarts`` times and has every
session terminated (``pg_terminate_backend``) ``--terminates`` times, and one worker reaches
it through a loopback proxy that deals it ``--toxic-seconds`` of network toxics (latency
200 ms +- 100 ms, then 64 KB/s). Then the checks of the CI tier: every result against the
reference, the history auditor on every run, each activity completed once in history and at
least once in the ledger, every extra execution explained by a kill; and the drain after the
last fault, held to RELIABILITY.md's bound (lease + 2 x poll interval + 10 s).

The seed is printed; ``--seed`` runs it again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "reliability"), str(ROOT / "tests")]

from harness.ledger import Ledger  # noqa: E402
from harness.pgfaults import terminate_backends  # noqa: E402
from harness.workers import Workers, check_torture, in_flight, start_all  # noqa: E402

from benchmarks import torture_scale, torture_soak  # noqa: E402
from perdure import Client  # noqa: E402

TIERS = {
    "long": {
        "workflows": 1000,
        "steps": 5,
        "workers": 3,
        "kills": 20,
        "restarts": 5,
        "terminates": 3,
        "toxic_seconds": 60.0,
    },
    "ci": {
        "workflows": 100,
        "steps": 5,
        "workers": 3,
        "kills": 5,
        "restarts": 2,
        "terminates": 1,
        "toxic_seconds": 4.0,
    },
    # benchmarks/torture_soak.py: its load and faults have options of their own
    "soak": {
        "workflows": 0,
        "steps": 3,
        "workers": 3,
        "kills": 0,
        "restarts": 0,
        "terminates": 0,
        "toxic_seconds": 0.0,
    },
}
# The activities' start-to-close timeout (their lease): long enough that an attempt on a
# loaded machine does not outlast it (each takes 5-50 ms, but waits its turn on a busy
# worker), short enough that a killed worker's attempts are soon run again.
LEASE_S = 5.0
# RELIABILITY.md's drain bound: lease + 2 x poll interval (0.1 s) + 10 s.
DRAIN_BOUND_S = LEASE_S + 2 * 0.1 + 10.0


@contextlib.contextmanager
def database(backend: str, directory: Path) -> Iterator[tuple[str, Any]]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'torture.db'}", None
        return
    from pgserver import private_server

    with private_server() as server:
        yield server.url, server


async def count_running(client: Client) -> int:
    return (await client.count_workflows("ExecutionStatus = 'Running'")).count


def progress(ledger: Ledger) -> int:
    """How many (workflow, activity) pairs have finished a side effect (by the ledger)."""
    return len(ledger.executions())


def fault_plan(rng: random.Random, args: argparse.Namespace, postgres: bool) -> list[str]:
    """The run's faults in order: kills, and on PostgreSQL restarts and terminations."""
    plan = ["kill"] * args.kills
    if postgres:
        plan += ["restart"] * args.restarts + ["terminate"] * args.terminates
    rng.shuffle(plan)
    return plan


async def toxics(proxy: Any, seconds: float, log: list[str], stop: asyncio.Event) -> float:
    """At most ``seconds`` of network toxics on the proxied worker's connections: the first
    half latency 200 ms +- 100 ms per chunk, the second half 64 KB/s, ended early once
    ``stop`` is set; when they ended."""
    for name, start, length in (
        ("latency 200 ms +- 100 ms", lambda: proxy.latency(0.1, 0.2), seconds / 2),
        ("bandwidth 64 KB/s", lambda: proxy.bandwidth(64 * 1024), seconds / 2),
    ):
        if stop.is_set():
            break
        began = time.monotonic()
        start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), length)
        log.append(f"{name} for {time.monotonic() - began:.0f} s")
    proxy.heal()
    return time.monotonic()


async def run_backend(backend: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One run. The faults are spread over the run by its progress: the i-th of n comes when
    i/(n+1) of 5-95% of the activities are done, so the last one leaves work in flight and
    the drain after it (RELIABILITY.md: lease + 2 x poll + 10 s) is a recovery, not the
    rest of the workload."""
    rng = random.Random(seed)
    directory = Path(tempfile.mkdtemp(prefix=f"perdure-torture-{backend}-"))
    faults_file = directory / "faults.txt"
    with database(backend, directory) as (url, server):
        ledger = Ledger(str(directory / "ledger.db"))
        workers = Workers(
            directory, url, ledger.path, env={"PERDURE_ACTIVITY_TIMEOUT_S": str(LEASE_S)}
        )
        proxy = None
        if server is not None and args.toxic_seconds > 0:
            from harness.proxy import Proxy

            proxy = Proxy("127.0.0.1", server.port, seed=seed).start()
        # Worker w0 reaches PostgreSQL through the proxy (the toxics' victim).
        urls = {"w0": proxy.url(url)} if proxy is not None else {}
        client = await Client.connect(url)
        counts: Counter[str] = Counter()
        toxic_log: list[str] = []
        began = time.monotonic()
        try:
            for i in range(args.workers):
                workers.spawn(
                    f"w{i}",
                    url=urls.get(f"w{i}"),
                    faults=f"{seed + i}:{args.fault_rate}::{faults_file}",
                )
            inputs = {f"t-{i}": rng.randrange(1_000_000) for i in range(args.workflows)}
            await start_all(client, inputs, args.steps)
            total = args.workflows * args.steps
            plan = fault_plan(rng, args, server is not None)
            toxic = None
            stop_toxics = asyncio.Event()
            last_fault = time.monotonic()
            for n, what in enumerate(plan, 1):
                target = int(total * (0.05 + 0.90 * n / len(plan)))
                seen, moved = progress(ledger), time.monotonic()
                while seen < target:
                    await asyncio.sleep(0.1)
                    now_done = progress(ledger)
                    if now_done > seen:
                        seen, moved = now_done, time.monotonic()
                    elif time.monotonic() - moved > args.deadline:
                        raise RuntimeError(f"no progress to {target} activities: see {directory}")
                if proxy is not None and toxic is None and n >= len(plan) // 5:
                    toxic = asyncio.get_running_loop().create_task(
                        toxics(proxy, args.toxic_seconds, toxic_log, stop_toxics)
                    )
                if toxic is not None and n == len(plan):
                    # The toxics end before the last fault, so that it leaves work in flight
                    # and the drain after it is a recovery (they outlasted a fast run).
                    stop_toxics.set()
                    await toxic
                if what == "restart":
                    await asyncio.to_thread(server.restart, "immediate")
                elif what == "terminate":
                    counts["backends terminated"] += await terminate_backends(server.url)
                else:
                    flying = in_flight(ledger)
                    live = {n: p for n, p in workers.procs.items() if p.poll() is None}
                    busy = sorted(n for n, p in live.items() if flying.get(p.pid, 0) > 0)
                    victim = rng.choice(busy or sorted(live))
                    workers.kill(victim)
                    workers.spawn(
                        victim,
                        url=urls.get(victim),
                        faults=f"{rng.randrange(2**31)}:{args.fault_rate}::{faults_file}",
                    )
                counts[what] += 1
                last_fault = time.monotonic()
            if toxic is not None:
                last_fault = max(last_fault, await toxic)
            running_at_last_fault = await count_running(client)
            while True:
                with contextlib.suppress(Exception):
                    if await count_running(client) == 0:
                        break
                if time.monotonic() - last_fault > args.deadline:
                    break
                await asyncio.sleep(0.1)
            drain = time.monotonic() - last_fault
            report = await check_torture(
                client, inputs, args.steps, ledger, kill_times=workers.kill_times
            )
            report.drain_seconds = drain
            faults = (
                Counter(
                    line.split()[1] for line in faults_file.read_text().splitlines() if line.strip()
                )
                if faults_file.exists()
                else Counter()
            )
            return {
                "backend": backend,
                "seed": seed,
                "workflows": report.workflows,
                "completed": report.completed,
                "activities": report.workflows * args.steps,
                "kills": workers.kills,
                "restarts": counts["restart"],
                "terminations": counts["terminate"],
                "backends_terminated": counts["backends terminated"],
                "toxics": toxic_log,
                "faults": dict(faults),
                "lost": len(report.queue.lost),
                "duplicated_results": len(report.queue.duplicated),
                "wrong_results": len(report.queue.wrong),
                "duplicated_activity_completions": report.duplicate_completions,
                "history_problems": len(report.history_problems),
                "extra_executions": report.extra_executions,
                "extra_reasons": dict(report.extra_reasons),
                "extra_unexplained": len(report.unexplained_extra),
                "interrupted": report.interrupted,
                "drain_s": round(drain, 1),
                "running_at_last_fault": running_at_last_fault,
                "drain_bound_s": DRAIN_BOUND_S,
                "seconds": round(time.monotonic() - began, 1),
                "dead_workers": workers.dead(),
                "problems": report.problems()[:10],
                "directory": str(directory),
            }
        finally:
            workers.stop_all()
            if proxy is not None:
                proxy.stop()
            await client.close()
            ledger.close()


def show(r: dict[str, Any]) -> str:
    faults = ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items())) or "none"
    return "\n".join(
        [
            f"{r['backend']} (seed {r['seed']}, {r['seconds']} s):",
            f"  workflows {r['workflows']} ({r['activities']} activities), completed "
            f"{r['completed']}",
            f"  SIGKILLs {r['kills']}, PostgreSQL immediate restarts {r['restarts']}, "
            f"pg_terminate_backend rounds {r['terminations']} ({r['backends_terminated']} "
            f"sessions), store faults injected {sum(r['faults'].values())} ({faults})",
            f"  network toxics on one worker: {'; '.join(r['toxics']) or 'none'}",
            f"  lost {r['lost']}, duplicated results {r['duplicated_results']}, wrong results "
            f"{r['wrong_results']}, duplicated activity completions "
            f"{r['duplicated_activity_completions']}, history invariant violations "
            f"{r['history_problems']}",
            f"  extra executions {r['extra_executions']} (why: {r['extra_reasons'] or 'none'}; "
            f"an attempt number run twice: {r['extra_unexplained']}), attempts killed before "
            f"their side effect finished {r['interrupted']}",
            f"  drain after the last fault {r['drain_s']} s ({r['running_at_last_fault']} "
            f"workflows were still running then; bound {r['drain_bound_s']} s: "
            f"{'within' if r['drain_s'] <= r['drain_bound_s'] else 'EXCEEDED'}), "
            f"workers that died on their own: {r['dead_workers'] or 'none'}",
            *(f"  PROBLEM: {p}" for p in r["problems"]),
        ]
    )


def suite_faults(seed: int, rate: float, pytest_args: list[str]) -> int:
    """RELIABILITY.md section 2: the whole functional suite with ``rate`` of the store calls
    the engine's workers make failing (tests/reliability/harness/suite_faults.py); the
    figures are pytest's summary and the plugin's ("store faults")."""
    import subprocess

    command = [sys.executable, "-m", "pytest", f"--store-faults={seed}:{rate}", "-q"]
    print("running:", " ".join(command + pytest_args), flush=True)
    return subprocess.call(command + pytest_args, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.torture", description=__doc__)
    parser.add_argument("--tier", choices=[*sorted(TIERS), "suite-faults"], default="long")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workflows", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--kills", type=int)
    parser.add_argument("--restarts", type=int)
    parser.add_argument("--terminates", type=int, help="rounds of pg_terminate_backend")
    parser.add_argument(
        "--toxic-seconds", type=float, help="latency then bandwidth toxics on one worker"
    )
    parser.add_argument("--fault-rate", type=float, default=0.01)
    parser.add_argument("--deadline", type=float, default=300.0)
    parser.add_argument(
        "--scenario",
        choices=["all", "crash", *torture_scale.SCENARIOS],
        default="all",
        help="the long tier runs them all: crash torture, then torture_scale's",
    )
    parser.add_argument("--minutes", type=float, default=20.0, help="the soak's length")
    parser.add_argument("--rate", type=float, default=3.0, help="soak: workflows a second")
    parser.add_argument("--fault-every", type=float, default=60.0, help="soak: seconds")
    parser.add_argument("--samples", help="soak: write w0's samples (CSV) to this file")
    args, rest = parser.parse_known_args(argv)
    if args.tier == "suite-faults":
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
        print(f"torture tier suite-faults, seed {seed} (re-run: --seed {seed})", flush=True)
        return suite_faults(seed, args.fault_rate, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    for key, value in TIERS[args.tier].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    if args.tier == "soak":
        return torture_soak.main(args, seed)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    print(f"torture tier {args.tier}, seed {seed} (re-run: --seed {seed})", flush=True)
    ok = True
    for backend in backends if args.scenario in ("all", "crash") else []:
        r = asyncio.run(run_backend(backend, args, seed))
        print(show(r), flush=True)
        ok = (
            ok
            and not r["problems"]
            and not r["dead_workers"]
            and r["extra_unexplained"] == 0
            and r["drain_s"] <= r["drain_bound_s"]
        )
    for scenario in torture_scale.SCENARIOS if args.tier == "long" else []:
        for backend in backends if args.scenario in ("all", scenario) else []:
            passed, figures = asyncio.run(torture_scale.run(scenario, backend, seed, args))
            print(figures, flush=True)
            ok = ok and passed
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
