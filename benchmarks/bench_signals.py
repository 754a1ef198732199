"""Signal throughput: how many signals a second the store takes, on SQLite or PostgreSQL.

Run it::

    python benchmarks/bench_signals.py                    # SQLite, a fresh file
    python benchmarks/bench_signals.py --postgres postgresql://postgres@127.0.0.1/test
    python benchmarks/bench_signals.py --keyed            # each signal with its own request_id

Each run starts one workflow (no worker: the signals are only recorded, as they are while a
worker is busy) and sends it ``--signals`` signals from ``--senders`` concurrent senders,
each awaiting its signal before sending the next; then ``--sequential`` more from one sender.
It prints signals/s for both. ``--keyed`` gives every signal a request_id of the caller's
(without it, the client makes one per call). To compare two versions, run each in turn in
the same minutes (``PYTHONPATH=/tmp/before/src python benchmarks/bench_signals.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from perdure import Client


def _fresh_postgres(url: str) -> tuple[str, str]:
    # The store makes the schema ``?schema=`` names on first use.
    schema = f"bench_signals_{uuid.uuid4().hex[:8]}"
    return f"{url}{'&' if '?' in url else '?'}schema={schema}", schema


async def _drop_postgres(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    await conn.close()


async def one_run(
    url: str, signals: int, senders: int, sequential: int, keyed: bool
) -> tuple[float, float]:
    client = await Client.connect(url)
    try:
        handle = await client.start_workflow("Sink", id="sink", task_queue="nobody")
        kwargs: dict[str, Any] = {}

        async def sender(n: int, tag: str) -> None:
            for i in range(n):
                if keyed:
                    kwargs["request_id"] = f"{tag}-{i}"
                await handle.signal("add", i, **kwargs)

        began = time.perf_counter()
        await asyncio.gather(*(sender(signals // senders, f"s{s}") for s in range(senders)))
        concurrent = (signals // senders * senders) / (time.perf_counter() - began)
        began = time.perf_counter()
        await sender(sequential, "seq")
        one = sequential / (time.perf_counter() - began)
        return concurrent, one
    finally:
        await client.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--signals", type=int, default=4000)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--sequential", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keyed", action="store_true")
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        if args.postgres:
            url, schema = _fresh_postgres(args.postgres)
            try:
                results.append(
                    await one_run(url, args.signals, args.senders, args.sequential, args.keyed)
                )
            finally:
                await _drop_postgres(args.postgres, schema)
        else:
            with tempfile.TemporaryDirectory() as d:
                url = f"sqlite:///{Path(d) / 'bench.db'}"
                results.append(
                    await one_run(url, args.signals, args.senders, args.sequential, args.keyed)
                )
    concurrent = statistics.median(r[0] for r in results)
    one = statistics.median(r[1] for r in results)
    store = "postgresql" if args.postgres else "sqlite"
    print(
        f"{store} keyed={args.keyed}: {concurrent:,.0f} signals/s from {args.senders} senders, "
        f"{one:,.0f} signals/s from one (median of {args.runs})"
    )


if __name__ == "__main__":
    asyncio.run(main())
