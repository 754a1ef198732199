"""Statements and round trips per workflow on PostgreSQL, counted in the driver.

Run it (PostgreSQL local, as in ``bench_core.py``)::

    python benchmarks/pg_statements.py                       # 500 workflows, 2 worker processes
    python benchmarks/pg_statements.py --workers 0 --top 40  # the worker in this process

It runs ``--n`` one-activity workflows (``bench_core.OneActivity``, all started at once, as
scenario (a)) on a fresh schema with ``--workers`` ``perdure worker`` processes, every
process's asyncpg connections wrapped: each call of ``execute``, ``executemany``,
``fetch``, ``fetchrow`` and ``fetchval`` is one round trip (a statement, or several sent as
one string), and a statement asyncpg had not prepared on that connection yet costs one
more (its Parse, ``prepares`` below). The counts start after the workers have warmed up, and
are printed per workflow, by process role, with the most frequent statements (``--top``).
Idle polls and LISTEN pings of the measured minutes are included: they are part of the cost.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import collections
import json
import os
import re
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

_COUNTS: collections.Counter[str] = collections.Counter()
_PREPARES: collections.Counter[str] = collections.Counter()
_TRACE: list[str] = []
_METHODS = ("execute", "executemany", "fetch", "fetchrow", "fetchval")


def _shape(sql: str) -> str:
    """A statement's text, shortened for the table: its CTE names' bodies cut."""
    text = re.sub(r"\s+", " ", sql).strip()
    return text if len(text) <= 150 else text[:147] + "..."


def install(dump: str | None = None) -> None:
    """Count this process's round trips; SIGUSR1 clears the counts, SIGUSR2 (or exit)
    writes them as JSON to ``dump``."""
    from asyncpg import connection  # type: ignore[import-untyped]

    def wrap(name: str) -> None:
        original = getattr(connection.Connection, name)

        async def counted(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            _COUNTS[f"{name}: {query}"] += 1
            if os.environ.get("PG_STATEMENTS_TRACE"):
                _TRACE.append(f"{time.perf_counter():.6f} {os.getpid()} {name}: {_shape(query)}")
            return await original(self, query, *args, **kwargs)

        setattr(connection.Connection, name, counted)

    for name in _METHODS:
        wrap(name)
    get_statement = connection.Connection._get_statement

    async def prepared(self: Any, query: str, timeout: Any, **kwargs: Any) -> Any:
        record_class = kwargs.get("record_class") or self._protocol.get_record_class()
        key = (query, record_class, kwargs.get("ignore_custom_codec", False))
        if kwargs.get("use_cache", True) and self._stmt_cache.get(key) is None:
            _PREPARES[query] += 1
        return await get_statement(self, query, timeout, **kwargs)

    connection.Connection._get_statement = prepared
    if dump is None:
        return

    def write(*_: Any) -> None:
        Path(dump).write_text(
            json.dumps({"calls": _COUNTS, "prepares": _PREPARES, "trace": _TRACE})
        )

    def clear(*_: Any) -> None:
        _COUNTS.clear()
        _PREPARES.clear()
        _TRACE.clear()

    signal.signal(signal.SIGUSR1, clear)
    signal.signal(signal.SIGUSR2, write)
    atexit.register(write)


def _print(role: str, calls: dict[str, int], prepares: dict[str, int], n: int, top: int) -> None:
    total = sum(calls.values())
    parses = sum(prepares.values())
    print(
        f"{role}: {total / n:.2f} round trips per workflow ({total:,} in all), "
        f"+ {parses / n:.2f} prepares ({parses:,}; {len(prepares)} distinct statements)"
    )
    for text, count in sorted(calls.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {count / n:7.3f}  {_shape(text)}")


async def run(args: argparse.Namespace) -> None:
    import bench_core
    from bench_core import TASK_QUEUE, OneActivity, worker_processes

    from perdure import Client, Worker

    install()
    bench_core.POSTGRES = args.postgres
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    url = f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}"
    tmp = Path(tempfile.mkdtemp(prefix="perdure-pgstmt-"))
    client = await Client.connect(url)
    worker_counts: list[dict[str, Any]] = []
    try:
        if args.workers:
            prelude = (
                "import os, pg_statements; "
                f"pg_statements.install(os.path.join({str(tmp)!r}, str(os.getpid()) + '.json')); "
            )
            context = worker_processes(client, url, args.workers, prelude)
        else:
            context = Worker(
                client,
                task_queue=TASK_QUEUE,
                workflows=[OneActivity],
                activities=[bench_core.noop],
            )
        async with context:
            if not args.workers:
                for i in range(4):
                    await client.execute_workflow(
                        OneActivity.run, i, id=f"w-{i}", task_queue=TASK_QUEUE
                    )
            workers = _workers(tmp)
            for pid in workers:
                os.kill(pid, signal.SIGUSR1)
            await asyncio.sleep(0.2)
            _COUNTS.clear()
            _PREPARES.clear()
            _TRACE.clear()
            t0 = time.perf_counter()
            handles = await asyncio.gather(
                *(
                    client.start_workflow(OneActivity.run, i, id=f"a-{i}", task_queue=TASK_QUEUE)
                    for i in range(args.n)
                )
            )
            results = await asyncio.gather(*(h.result() for h in handles))
            elapsed = time.perf_counter() - t0
            if results != list(range(args.n)):
                raise RuntimeError("wrong results")
            ours = (dict(_COUNTS), dict(_PREPARES))
            for pid in workers:
                os.kill(pid, signal.SIGUSR2)
            await asyncio.sleep(0.5)
            for pid in workers:
                worker_counts.append(json.loads((tmp / f"{pid}.json").read_text()))
    finally:
        await client.close()
        await bench_core._drop_schema(schema)
    rate = args.n / elapsed
    print(f"{args.n} one-activity workflows, {args.workers} worker processes: {rate:,.0f}/s")
    role = "client (starts, results)" if args.workers else "client and worker in one process"
    _print(role, ours[0], ours[1], args.n, args.top)
    if worker_counts:
        calls: collections.Counter[str] = collections.Counter()
        prepares: collections.Counter[str] = collections.Counter()
        for counts in worker_counts:
            calls.update(counts["calls"])
            prepares.update(counts["prepares"])
        _print(f"{len(worker_counts)} worker processes", calls, prepares, args.n, args.top)
        total = sum(calls.values()) + sum(ours[0].values())
        print(f"all processes: {total / args.n:.2f} round trips per workflow")
    if os.environ.get("PG_STATEMENTS_TRACE"):
        trace = list(_TRACE) + [t for counts in worker_counts for t in counts["trace"]]
        print("\n".join(sorted(trace)))


def _workers(tmp: Path) -> list[int]:
    """The worker processes this run started (their command line names ``tmp``)."""
    found = []
    for pid in (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()):
        try:
            if str(tmp) in Path(f"/proc/{pid}/cmdline").read_text():
                found.append(pid)
        except OSError:
            pass
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
