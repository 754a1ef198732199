"""S1 (2,000 one-activity workflows at once, SQLite) on an empty file and beside N closed
runs: throughput, this process's CPU, and what it read and wrote (``/proc/self/io``).

    python benchmarks/bench_beside_closed.py --closed 100000 --runs 3

The closed runs are one real one-activity run (its executions row and history) copied N
times with new ids, in time order as perdure makes them, into a file kept at ``--cache``
and copied afresh for each run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_core as b

from perdure import Client, Worker
from perdure._common.run_ids import new_run_id
from perdure._store._rows import EXEC_COLS


async def _template(path: str) -> None:
    client = await Client.connect(f"sqlite:///{path}")
    async with Worker(
        client, task_queue=b.TASK_QUEUE, workflows=[b.OneActivity], activities=[b.noop]
    ):
        await client.execute_workflow(b.OneActivity.run, 1, id="template", task_queue="bench")
    await client.close()


def fill(path: str, n: int) -> None:
    asyncio.run(_template(path))
    c = sqlite3.connect(path, isolation_level=None)
    cols = [x.strip() for x in EXEC_COLS.split(",")]
    ex = c.execute(f"SELECT {EXEC_COLS} FROM executions WHERE workflow_id = 'template'").fetchone()
    hist = c.execute(
        "SELECT event_id, event_type, event_time, attributes FROM history WHERE run_id = ?",
        (ex[0],),
    ).fetchall()
    at = {name: cols.index(name) for name in ("run_id", "first_run_id", "workflow_id")}
    start, close = cols.index("start_time"), cols.index("close_time")
    t0 = time.time() - 86_400
    insert = f"INSERT INTO executions ({EXEC_COLS}) VALUES ({', '.join('?' * len(cols))})"
    c.execute("BEGIN")
    for i in range(n):
        when = t0 + i * 0.01
        run_id = new_run_id(int(when * 1000))
        row = list(ex)
        row[at["run_id"]] = row[at["first_run_id"]] = run_id
        row[at["workflow_id"]] = f"old-{i}"
        row[start], row[close] = when, when + 0.005
        c.execute(insert, row)
        c.executemany(
            "INSERT INTO history (run_id, event_id, event_type, event_time, attributes) "
            "VALUES (?, ?, ?, ?, ?)",
            [(run_id, *h) for h in hist],
        )
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def _io() -> dict[str, int]:
    lines = Path("/proc/self/io").read_text().splitlines()
    return {k: int(v) for k, v in (line.split(": ") for line in lines)}


async def s1(source: str | None, n: int) -> str:
    with tempfile.TemporaryDirectory(prefix="perdure-bench-") as tmp:
        path = f"{tmp}/s1.db"
        if source:
            shutil.copy(source, path)
        client = await Client.connect(f"sqlite:///{path}")
        async with Worker(
            client, task_queue=b.TASK_QUEUE, workflows=[b.OneActivity], activities=[b.noop]
        ):
            io0, cpu0, t0 = _io(), time.process_time(), time.perf_counter()
            handles = await asyncio.gather(
                *(
                    client.start_workflow(b.OneActivity.run, i, id=f"a-{i}", task_queue="bench")
                    for i in range(n)
                )
            )
            await asyncio.gather(*(h.result() for h in handles))
            wall, cpu, io1 = time.perf_counter() - t0, time.process_time() - cpu0, _io()
        await client.close()
    read = (io1["rchar"] - io0["rchar"]) / 1e6
    written = (io1["wchar"] - io0["wchar"]) / 1e6
    return (
        f"{n / wall:,.0f} workflows/s, CPU {cpu:.2f} s, read {read:.1f} MB "
        f"({io1['syscr'] - io0['syscr']:,} calls), written {written:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--closed", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workflows", type=int, default=2000)
    parser.add_argument("--cache", default=None, help="the filled file (made if missing)")
    args = parser.parse_args()
    cache = args.cache or os.path.join(tempfile.gettempdir(), f"perdure-closed-{args.closed}.db")
    if not os.path.exists(cache):
        fill(cache, args.closed)
    for i in range(args.runs):  # alternated: a slow minute lands on both
        print(f"run {i + 1} empty file:         {asyncio.run(s1(None, args.workflows))}")
        print(
            f"run {i + 1} beside {args.closed:,} closed: {asyncio.run(s1(cache, args.workflows))}",
            flush=True,
        )


if __name__ == "__main__":
    main()
