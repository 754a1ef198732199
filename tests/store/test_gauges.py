"""The store gauges' queries read indexes of the rows they count, not the tables: the
database's own plan says so (SQLite's EXPLAIN QUERY PLAN; PostgreSQL's EXPLAIN with sequential
scans priced out, since on a near-empty table it would rightly prefer one)."""

from __future__ import annotations

import re
import sqlite3
from urllib.parse import parse_qs, urlsplit

from pgutil import postgres_admin

from perdure._store import Store
from perdure._store import _gauges as gauges
from perdure._store._postgres_lifecycle import _numbered

# Each query, and the index its plan must use.
PLANS = [
    (gauges.BACKLOG, "tasks_ready"),
    (gauges.OPEN, "executions_open_by_type"),
    (gauges.FAILING, "executions_failing"),
    (gauges.TIMERS, "timers_due"),
    (gauges.SCHEDULES, "schedules_due"),
]


def params(sql: str) -> tuple[float, ...]:
    return (1.0,) * sql.count("?")


async def test_gauge_queries_use_their_indexes(store: Store, db_url: str) -> None:
    await store.gauges()  # the schema is there, migrated
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            for sql, index in PLANS[:4]:
                plan = " ".join(
                    r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params(sql))
                )
                assert f"INDEX {index}" in plan, (sql, plan)
            # The runs, open and failing, are counted from the index alone.
            for sql, index in PLANS[1:3]:
                plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
                assert f"COVERING INDEX {index}" in plan, (sql, plan)
        finally:
            conn.close()
        return
    schema = parse_qs(urlsplit(db_url).query)["schema"][0]
    admin = await postgres_admin()
    try:
        await admin.execute(f'SET search_path TO "{schema}"; SET enable_seqscan = off')
        for sql, index in PLANS:
            rows = await admin.fetch("EXPLAIN " + _numbered(sql), *params(sql))
            plan = " ".join(r[0] for r in rows)
            assert re.search(rf"(using|Index Scan on) {index}\b", plan), (sql, plan)
    finally:
        await admin.close()
