"""The timer service's next wake-up beside many ready tasks, with and without the
``tasks_waiting`` index (SQLite, in memory).

    python benchmarks/bench_next_wakeup.py --tasks 10000
"""

from __future__ import annotations

import argparse
import sqlite3
import time

from perdure._store._schema import MIGRATIONS
from perdure._store._sqlite import NEXT_WAKEUP_SQL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000, help="ready tasks in the queue")
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    c = sqlite3.connect(":memory:", isolation_level=None)
    for migration in MIGRATIONS:
        for statement in migration:
            c.execute(statement)
    now = 1000.0
    c.execute("BEGIN")
    c.executemany(
        "INSERT INTO tasks (kind, namespace, task_queue, run_id, workflow_id, ref, visible_at, "
        "lease_seconds, data) VALUES (1, 'default', 'q', ?, ?, 0, ?, 10, x'7b7d')",
        [(f"r{i}", f"w{i}", now - 1 + i * 1e-6) for i in range(args.tasks)],
    )
    c.execute("COMMIT")
    for label in ("with tasks_waiting", "without it (before)"):
        t = time.perf_counter()
        for _ in range(args.calls):
            c.execute(NEXT_WAKEUP_SQL, (now,)).fetchone()
        per_call = (time.perf_counter() - t) / args.calls * 1e6
        print(f"{label}: {per_call:,.0f} µs per next_wakeup beside {args.tasks:,} ready tasks")
        c.execute("DROP INDEX IF EXISTS tasks_waiting")


if __name__ == "__main__":
    main()
